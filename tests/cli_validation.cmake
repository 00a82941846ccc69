# README: "VKRUN_VALIDATION=1 ... messages are counted and make the command fail".  With a
# validation error provoked inside the context (VKRUN_TEST_PROVOKE_VALIDATION=1, see
# runtime/core/device.c), each command below must exit 1 and say so; without it, the same command
# exits 0.
set(ENV{VKRUN_VALIDATION} 1)
foreach(args "selftest;--op;axpby" "bench;--op;dense;--batch;1")
  set(ENV{VKRUN_TEST_PROVOKE_VALIDATION} 0)
  execute_process(COMMAND ${VKRUN} ${args} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "vkrun ${args} failed without a provoked message (exit ${rc}):\n${out}${err}")
  endif()
  set(ENV{VKRUN_TEST_PROVOKE_VALIDATION} 1)
  execute_process(COMMAND ${VKRUN} ${args} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "validation layer reported [1-9]")
    message(FATAL_ERROR "vkrun ${args} with a validation error: exit ${rc}, expected 1 and the count:\n${out}${err}")
  endif()
  message(STATUS "vkrun ${args}: exit 0 when clean, exit 1 with a validation error")
endforeach()
