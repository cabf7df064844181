# ctest test_consumer: install the build into a scratch prefix, then build
# and run tests/consumer against it three ways: find_package with the
# shared library, find_package with the static library, and pkg-config.
# Variables: SOURCE_DIR, BUILD_DIR, WORK_DIR, C_COMPILER, EXTRA_FLAGS (the
# sanitizer flags of a sanitized build, else empty).
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${C_COMPILER}
    "-DCMAKE_C_FLAGS=${EXTRA_FLAGS}")
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer_shared")
run("${WORK_DIR}/build/consumer_static")

# The static executable must not need libspangc.so.
execute_process(COMMAND ldd "${WORK_DIR}/build/consumer_static" OUTPUT_VARIABLE deps)
if(deps MATCHES "libspangc")
  message(FATAL_ERROR "consumer_static links libspangc dynamically:\n${deps}")
endif()

# pkg-config, as a Makefile-based project would use it.
file(GLOB pcdir "${prefix}/lib*/pkgconfig" "${prefix}/lib/*/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "${pcdir}")
execute_process(COMMAND pkg-config --cflags --libs spangc OUTPUT_VARIABLE flags
                RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config cannot find spangc in ${pcdir}")
endif()
separate_arguments(flags UNIX_COMMAND "${flags} ${EXTRA_FLAGS}")
run(${C_COMPILER} "${SOURCE_DIR}/tests/consumer/main.c" -o "${WORK_DIR}/consumer_pc" ${flags}
    -Wl,-rpath,${pcdir}/..)
run("${WORK_DIR}/consumer_pc")
# Static: the archive itself, plus what `pkg-config --static` says it needs.
execute_process(COMMAND pkg-config --static --cflags --libs spangc OUTPUT_VARIABLE sflags
                OUTPUT_STRIP_TRAILING_WHITESPACE)
execute_process(COMMAND pkg-config --variable=libdir spangc OUTPUT_VARIABLE libdir
                OUTPUT_STRIP_TRAILING_WHITESPACE)
string(REPLACE "-lspangc" "${libdir}/libspangc.a" sflags "${sflags}")
separate_arguments(sflags UNIX_COMMAND "${sflags} ${EXTRA_FLAGS}")
run(${C_COMPILER} "${SOURCE_DIR}/tests/consumer/main.c" -o "${WORK_DIR}/consumer_pc_static"
    ${sflags})
run("${WORK_DIR}/consumer_pc_static")
