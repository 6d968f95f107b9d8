// libpng from Debian (libpng-dev): `kiln predict` reads PNG images through its simplified API.
#include <png.h>
