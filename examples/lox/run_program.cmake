# Runs one Lox program and compares its standard output with the expected
# output file. Called by ctest:
#   cmake -DLOX=<lox binary> -DPROGRAM=<file.lox> -DEXPECTED=<file>
#         [-DFLAGS=<flags separated by ;>] [-DSTRESS=1] [-DGCSTATS=1]
#         [-DPROFILE=<file>] [-DDROPS_STRINGS=1] -P run_program.cmake
# or, for the REPL, -DINPUT=<file> instead of -DPROGRAM: the file becomes
# the standard input of lox started without a script.
#
# The flags that print are checked for what they print: --gc-trace a line
# per cycle, --stats the statistics at exit; GCSTATS=1 says the program
# calls gcStats() as its last statement, whose line must be there too,
# with a heap in use smaller than the heap from the OS, and, with --stats,
# as many collections as the report at exit less the collections at exit
# (the report's, and --heap-profile's);
# PROFILE=<file> adds --heap-profile <file>, which must then hold a heap
# profile with samples.
#
# DROPS_STRINGS=1 says the program lets go of most strings it interned:
# --stats must then count fewer interned strings alive than slots used
# (the weak interning lets the dead ones go).
#
# A stress run (--gc-stress among the flags, or STRESS=1 when LOX is the
# lox-gc-stress wrapper) must collect at every allocation: it also gets
# --stats, whose report at exit must count at least as many collections
# as objects allocated. The output alone would not tell: it is the same
# whether or not the collections happen.
cmake_minimum_required(VERSION 3.25)

if("--gc-stress" IN_LIST FLAGS)
  set(STRESS 1)
endif()
if(STRESS OR DROPS_STRINGS)
  list(APPEND FLAGS --stats)
endif()
if(DEFINED PROFILE)
  file(REMOVE ${PROFILE})
  list(APPEND FLAGS --heap-profile ${PROFILE})
endif()

if(DEFINED INPUT)
  set(PROGRAM "")
  set(input_args INPUT_FILE ${INPUT})
endif()
foreach(var LOX PROGRAM EXPECTED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_program.cmake: ${var} is not set")
  endif()
endforeach()

execute_process(
  COMMAND ${LOX} ${FLAGS} ${PROGRAM}
  ${input_args}
  OUTPUT_VARIABLE actual
  ERROR_VARIABLE errors
  RESULT_VARIABLE status)
file(READ ${EXPECTED} expected)

if(NOT status EQUAL 0)
  message(FATAL_ERROR "${PROGRAM}${INPUT}: lox exited with ${status}\n${errors}")
endif()
set(must_print "")
if("--gc-trace" IN_LIST FLAGS)
  list(APPEND must_print "gc [0-9]+ @[0-9.]+s: pause [0-9.]+ ms, heap [0-9.]+ -> [0-9.]+ MiB live")
endif()
if("--stats" IN_LIST FLAGS)
  list(APPEND must_print "lox: heap statistics at exit")
endif()
if(GCSTATS)
  list(APPEND must_print "gc: [0-9]+ collections, heap [0-9.]+ KiB in [0-9]+ objects")
endif()
foreach(pattern IN LISTS must_print)
  if(NOT errors MATCHES "${pattern}")
    message(FATAL_ERROR "${PROGRAM}: nothing on stderr matches '${pattern}'\n${errors}")
  endif()
endforeach()
if(GCSTATS)
  string(REGEX MATCH "gc: ([0-9]+) collections, heap ([0-9.]+) KiB in [0-9]+ objects \\(([0-9.]+) KiB from the OS\\)"
         found "${errors}")
  set(gcstats_collections "${CMAKE_MATCH_1}")
  if(NOT CMAKE_MATCH_2 LESS CMAKE_MATCH_3)
    message(FATAL_ERROR "${PROGRAM}: gcStats() shows ${CMAKE_MATCH_2} KiB in use of ${CMAKE_MATCH_3} "
                        "KiB from the OS\n${errors}")
  endif()
  if("--stats" IN_LIST FLAGS)
    string(REGEX MATCH "collections +([0-9]+) \\(" found "${errors}")
    # --heap-profile collects once more, before it writes the profile.
    set(at_exit 1)
    if(DEFINED PROFILE)
      set(at_exit 2)
    endif()
    math(EXPR final "${gcstats_collections} + ${at_exit}")
    if(NOT CMAKE_MATCH_1 EQUAL final)
      message(FATAL_ERROR "${PROGRAM}: gcStats() counted ${gcstats_collections} collections, "
                          "--stats ${CMAKE_MATCH_1} at exit\n${errors}")
    endif()
  endif()
endif()
if(DEFINED PROFILE)
  file(READ ${PROFILE} profile)
  if(NOT profile MATCHES "^heap profile: [0-9]+: [0-9]+ \\[[0-9]+: [0-9]+\\] @ heap_v2/" OR
     NOT profile MATCHES "\n[0-9]+: [0-9]+ \\[[0-9]+: [0-9]+\\] @ 0x")
    message(FATAL_ERROR "${PROGRAM}: ${PROFILE} is not a heap profile with samples:\n${profile}")
  endif()
endif()
if(DROPS_STRINGS)
  string(REGEX MATCH "interned strings +([0-9]+) live of ([0-9]+) slots" found "${errors}")
  if(found STREQUAL "" OR NOT CMAKE_MATCH_1 LESS CMAKE_MATCH_2)
    message(FATAL_ERROR "${PROGRAM}: the interned strings it dropped are still counted live\n"
                        "${errors}")
  endif()
endif()
if(STRESS)
  string(REGEX MATCH "collections +([0-9]+)" found "${errors}")
  set(collections "${CMAKE_MATCH_1}")
  string(REGEX MATCH "allocated +([0-9]+) objects" found "${errors}")
  set(allocated "${CMAKE_MATCH_1}")
  if(collections STREQUAL "" OR allocated STREQUAL "" OR collections LESS allocated)
    message(FATAL_ERROR "${PROGRAM}: a stress run collected ${collections} times for "
                        "${allocated} objects allocated\n${errors}")
  endif()
endif()
if(NOT actual STREQUAL expected)
  # Show the first differing line, then both outputs in full.
  string(REPLACE "\n" ";" actual_lines "${actual}")
  string(REPLACE "\n" ";" expected_lines "${expected}")
  list(LENGTH expected_lines n)
  set(i 0)
  while(i LESS n)
    list(GET expected_lines ${i} want)
    list(LENGTH actual_lines m)
    if(i LESS m)
      list(GET actual_lines ${i} got)
    else()
      set(got "<missing>")
    endif()
    if(NOT want STREQUAL got)
      math(EXPR line "${i} + 1")
      message("line ${line}: expected '${want}', got '${got}'")
      break()
    endif()
    math(EXPR i "${i} + 1")
  endwhile()
  message(FATAL_ERROR "${PROGRAM}${INPUT}: output differs from ${EXPECTED}\n"
                      "--- actual ---\n${actual}--- stderr ---\n${errors}")
endif()
