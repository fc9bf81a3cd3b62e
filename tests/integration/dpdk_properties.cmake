# tests/integration/dpdk_properties.cmake: run by ctest after integration_tests' discovered tests
# are added (TEST_INCLUDE_FILES): the DpdkVirtioUserTest ones (each runs DPDK's testpmd, which
# busy-polls a core) are labelled `integration` and `dpdk` and run one at a time (RUN_SERIAL).
foreach(test_name IN LISTS integration_tests_TESTS)
  if(test_name MATCHES "^DpdkVirtioUserTest\\.")
    set_tests_properties("${test_name}" PROPERTIES LABELS "integration;dpdk" RUN_SERIAL TRUE)
  endif()
endforeach()
