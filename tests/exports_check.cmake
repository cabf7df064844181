# The library's symbols: an embedder sees only the API, and nothing spangc
# defines can collide with the embedder's own names in a static link.
#   cmake -DNM=nm -DSHARED=libspangc.so -DSTATIC=libspangc.a -P exports_check.cmake
# Shared: every dynamic symbol spangc defines is a gc_* function.
# Static: every global symbol defined in the archive is gc_* or spangc_*.
# nm's output lines for a file, into the variable named by out_var.
function(nm_lines out_var file)
  execute_process(COMMAND "${NM}" ${ARGN} --defined-only "${file}"
    OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm failed on ${file}")
  endif()
  string(REGEX MATCHALL "[^\n]+" lines "${out}")
  set(${out_var} "${lines}" PARENT_SCOPE)
endfunction()

nm_lines(lines "${SHARED}" -D)
set(bad "")
set(api 0)
foreach(l IN LISTS lines)
  string(REGEX REPLACE "^.* " "" name "${l}")
  if(name MATCHES "^gc_")
    math(EXPR api "${api} + 1")
  else()
    list(APPEND bad "${name}")
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "${SHARED} exports non-API symbols: ${bad}")
endif()
if(api LESS 20)
  message(FATAL_ERROR "${SHARED} exports only ${api} gc_* symbols")
endif()

nm_lines(lines "${STATIC}" -g)
foreach(l IN LISTS lines)
  # "0000000000000000 T name"; member headers ("file.o:") have no address.
  if(l MATCHES "^[0-9a-f]+ [A-Za-z] ")
    string(REGEX REPLACE "^.* " "" name "${l}")
    if(NOT name MATCHES "^(gc_|spangc_|__start_spangc_state|__stop_spangc_state)")
      list(APPEND bad "${name}")
    endif()
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "${STATIC} defines global symbols without a spangc_ or gc_ prefix: ${bad}")
endif()
message(STATUS "${api} API symbols exported; no other names")
