#include "command.hpp"

int main(int argc, char** argv) {
  return dfhook::app::run(argc, argv, false);
}
