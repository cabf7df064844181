# Run a libFuzzer target for a fixed number of runs over the seed corpus.
#   cmake -DFUZZER=... -DSEEDS=dir -DWORK_DIR=dir -DRUNS=n [-DEXTRA=flags] -P run_fuzzer.cmake
# New inputs are written to WORK_DIR (emptied first), crashes to WORK_DIR/crash-*.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/corpus")
separate_arguments(extra UNIX_COMMAND "${EXTRA}")
execute_process(
  COMMAND "${FUZZER}" -runs=${RUNS} -seed=1 -print_final_stats=1
          "-artifact_prefix=${WORK_DIR}/" ${extra}
          "${WORK_DIR}/corpus" "${SEEDS}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}); artifacts in ${WORK_DIR}")
endif()
