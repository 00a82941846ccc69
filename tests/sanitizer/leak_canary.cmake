# Runs leak_canary (a deliberate leak) with the project's LeakSanitizer settings and
# requires LeakSanitizer to fail it and to name vkrun's own allocations: the
# suppressions in lsan.supp must hide the driver stack only.
execute_process(COMMAND ${CANARY} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
set(all "${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "leak_canary leaked on purpose but exited 0: LeakSanitizer missed vkrun's own leak\n${all}")
endif()
if(NOT all MATCHES "leaked on purpose")
  message(FATAL_ERROR "leak_canary did not get to its leak (exit ${rc}):\n${all}")
endif()
if(NOT all MATCHES "LeakSanitizer: detected memory leaks")
  message(FATAL_ERROR "leak_canary failed (exit ${rc}) without a LeakSanitizer report:\n${all}")
endif()
foreach(fn vkr_context_create buffer_create) # buffer_create: vkr_buffer_create or its static helper
  if(NOT all MATCHES "${fn}")
    message(FATAL_ERROR "LeakSanitizer's report does not name ${fn}: the leak of vkrun's own allocation was hidden\n${all}")
  endif()
endforeach()
message(STATUS "LeakSanitizer reported the deliberate leaks (exit ${rc})")
