#include "dfhook/service/store_fetcher.hpp"

#include <doctest/doctest.h>

using dfhook::service::authenticated_datafile_url;
using dfhook::service::datafile_key;

TEST_CASE("a datafile name stands for its SDK key, and an SDK key for its authenticated URL") {
  CHECK(datafile_key("TestSdkKey123.json") == "TestSdkKey123");
  CHECK(datafile_key("1234.json") == "1234");
  CHECK(datafile_key("datafile") == "datafile");
  CHECK(authenticated_datafile_url("TestSdkKey123.json") ==
        "https://config.optimizely.com/datafiles/auth/TestSdkKey123.json");
  CHECK(authenticated_datafile_url(".json").empty());
  CHECK(authenticated_datafile_url("datafile").empty());
}
