// Statement corpora (tests/policy/*.cases, tests/mask/*.cases): "== EXPECTED" opens a
// case, the lines up to the next one are its SQL, "##" lines are comments. Read by
// unit tests (judgement) and integration tests (the same statements against PostgreSQL).
#pragma once

#include <fstream>
#include <string>
#include <vector>

namespace sluice::testing_support {

struct StatementCase {
  int line = 0;
  std::string expected;  // "allow" or "block <rule>"
  std::string sql;
};

inline std::vector<StatementCase> load_statement_cases(const std::string& path) {
  std::ifstream in(path);
  std::vector<StatementCase> cases;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.rfind("##", 0) == 0) continue;
    if (line.rfind("== ", 0) == 0) {
      cases.push_back({number, line.substr(3), ""});
      continue;
    }
    if (cases.empty()) continue;
    cases.back().sql += line;
    cases.back().sql += '\n';
  }
  for (StatementCase& c : cases) {
    while (!c.sql.empty() && (c.sql.back() == '\n' || c.sql.back() == '\r')) c.sql.pop_back();
    while (!c.expected.empty() && c.expected.back() == ' ') c.expected.pop_back();
  }
  return cases;
}

}  // namespace sluice::testing_support
