// Python bindings of realsim's C++ CPU ops (signatures and tensor layouts documented in ops.h). Only torch's pybind
// casters are included, not <torch/extension.h> (the whole C++ frontend): that halves this file's compile time.
#include <torch/csrc/utils/pybind.h>

#include "ops.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "realsim Gaussian splatting C++/OpenMP CPU kernels, the Scaffold-GS anchor prefilter and the mesh z-buffer";
    m.def("project_fwd", &realsim::project_fwd, "projection forward (see ops.h)");
    m.def("project_bwd", &realsim::project_bwd, "projection backward (see ops.h)");
    m.def("isect_tiles", &realsim::isect_tiles, "tile intersection with per-tile depth sort (see ops.h)");
    m.def("rasterize_fwd", &realsim::rasterize_fwd, "tile rasterization forward (see ops.h)");
    m.def("rasterize_bwd", &realsim::rasterize_bwd, "tile rasterization backward (see ops.h)");
    m.def("sh_fwd", &realsim::sh_fwd, "spherical harmonics forward (see ops.h)");
    m.def("sh_bwd", &realsim::sh_bwd, "spherical harmonics backward (see ops.h)");
    m.def("anchor_prefilter", &realsim::anchor_prefilter, "anchors [M,3], radii [M], viewmat [4,4], K [3,3], width, "
          "height, near_plane, pad -> mask [M] bool (sphere meets the camera frustum; see ops.h)");
    m.def("mesh_zbuffer", &realsim::mesh_zbuffer, "uv [T,3,2], z [T,3], width, height, near, far -> [H*W] int64 nearest "
          "triangle per pixel, -1 empty (see ops.h)");
}
