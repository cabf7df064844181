# ctest test_pprof_roundtrip: write a heap profile with profile_demo and
# check that google-pprof (Debian package google-perftools) symbolizes it:
# the allocating functions must be named in `google-pprof --text`.
# Variables: DEMO (the program), WORK_DIR. Without google-pprof it prints
# SKIPPED and stops (ctest's SKIP_REGULAR_EXPRESSION: cmake 3.25 has no
# cmake_language(EXIT) for an exit code).
find_program(PPROF NAMES google-pprof pprof)
if(NOT PPROF)
  message("SKIPPED: google-pprof not found (apt-get install google-perftools)")
  return()
endif()
file(MAKE_DIRECTORY "${WORK_DIR}")
set(profile "${WORK_DIR}/heap.prof")
execute_process(COMMAND "${DEMO}" "${profile}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "profile_demo failed (${rc})")
endif()
foreach(mode inuse_space alloc_objects)
  execute_process(COMMAND "${PPROF}" --text --${mode} "${DEMO}" "${profile}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("google-pprof --${mode}:\n${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "google-pprof failed (${rc}):\n${err}")
  endif()
  foreach(fn build_widget_catalog make_label)
    if(NOT out MATCHES "${fn}")
      message(FATAL_ERROR "google-pprof --${mode} does not name ${fn}")
    endif()
  endforeach()
endforeach()
