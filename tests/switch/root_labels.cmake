# tests/switch/root_labels.cmake: run by ctest after switch_root_tests' discovered tests are
# added (TEST_INCLUDE_FILES): labels each of them `integration` and `root`.
foreach(test_name IN LISTS switch_root_tests_TESTS)
  set_tests_properties("${test_name}" PROPERTIES LABELS "integration;root")
endforeach()
