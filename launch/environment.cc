#include "launch/environment.h"

#include <algorithm>

extern char** environ;

namespace optower::launch {

std::vector<std::string> MergedEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    const bool overridden = std::any_of(extra.begin(), extra.end(), [&](const std::string& x) {
      return x.substr(0, x.find('=')) == name;
    });
    if (!overridden) env.push_back(std::move(entry));
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

}  // namespace optower::launch
