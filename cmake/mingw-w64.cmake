# Cross-compiling for Windows x64 with Debian's mingw-w64 (docs/windows.md).
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake -DBATON_WIN_DEPS=PREFIX ...
# PREFIX holds libevent, OpenSSL and inih built for Windows by
# tools/win-deps.sh (it may also come from the environment variable of the
# same name).  Programs link statically: only Windows' own DLLs at run time.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(BATON_WIN_TRIPLE x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${BATON_WIN_TRIPLE}-gcc)
set(CMAKE_RC_COMPILER ${BATON_WIN_TRIPLE}-windres)
set(CMAKE_AR ${BATON_WIN_TRIPLE}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${BATON_WIN_TRIPLE}-ranlib CACHE FILEPATH "")

if(NOT BATON_WIN_DEPS AND DEFINED ENV{BATON_WIN_DEPS})
  set(BATON_WIN_DEPS "$ENV{BATON_WIN_DEPS}")
endif()
# try_compile projects re-read this file: hand them the prefix too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES BATON_WIN_DEPS)

# Only the mingw sysroot and the dependency prefix: never Linux's libssl.
set(CMAKE_FIND_ROOT_PATH /usr/${BATON_WIN_TRIPLE} ${BATON_WIN_DEPS})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
if(BATON_WIN_DEPS)
  # pkg-config reads the prefix's .pc files only (their paths are absolute).
  set(ENV{PKG_CONFIG_LIBDIR} "${BATON_WIN_DEPS}/lib/pkgconfig")
  set(ENV{PKG_CONFIG_PATH} "")
  set(OPENSSL_ROOT_DIR "${BATON_WIN_DEPS}")
endif()
set(OPENSSL_USE_STATIC_LIBS TRUE)

# No libgcc or libwinpthread DLLs.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

# ctest (and try_run) start the .exe files under Wine.
find_program(BATON_WINE wine)
if(BATON_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BATON_WINE})
endif()
