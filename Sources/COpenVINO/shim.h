// OpenVINO's C API, from the pinned PyPI wheel that scripts/openvino.sh installs into .openvino/
// (its pkg-config file, radgrid-openvino.pc, names the include and library folders).
#include <openvino/c/openvino.h>
