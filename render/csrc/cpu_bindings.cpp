// Python bindings of realsim's C++ CPU ops (signatures and tensor layouts documented in ops.h).
#include <torch/extension.h>

#include "ops.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "realsim Gaussian splatting C++/OpenMP CPU kernels";
    m.def("project_fwd", &realsim::project_fwd, "projection forward (see ops.h)");
    m.def("project_bwd", &realsim::project_bwd, "projection backward (see ops.h)");
    m.def("isect_tiles", &realsim::isect_tiles, "tile intersection with per-tile depth sort (see ops.h)");
    m.def("rasterize_fwd", &realsim::rasterize_fwd, "tile rasterization forward (see ops.h)");
    m.def("rasterize_bwd", &realsim::rasterize_bwd, "tile rasterization backward (see ops.h)");
    m.def("sh_fwd", &realsim::sh_fwd, "spherical harmonics forward (see ops.h)");
    m.def("sh_bwd", &realsim::sh_bwd, "spherical harmonics backward (see ops.h)");
}
