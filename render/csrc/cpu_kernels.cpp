// The whole C++ CPU extension as one translation unit (render/_cpu.py builds only this file): the kernels, the anchor
// prefilter, the mesh z-buffer and the bindings share one parse of ATen's headers, which dominate a cold build (each separate file paid
// ~10 CPU s for them; one module instead of a second prefilter extension also drops a link). The included files stay
// separate for reading; each still compiles on its own.
#include "cpu_project.cpp"
#include "cpu_isect.cpp"
#include "cpu_rasterize.cpp"
#include "cpu_sh.cpp"
#include "prefilter_cpu.cpp"
#include "mesh_cpu.cpp"
#include "cpu_bindings.cpp"
