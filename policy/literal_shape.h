// The decision cache's second key: a SQL text with the numeric literals that cannot
// change a policy decision replaced by parameters, so that `... WHERE aid = 17` and
// `... WHERE aid = 42` (an agent or pgbench in simple-query mode) share one entry
// instead of each costing a libpg_query parse.
//
// Which literals: a number compared with, added to or ranged against a column
// (`col = 5`, `t.col >= -3`, `col + 7`, `col BETWEEN 1 AND 9`), every element of an
// all-numeric `col IN (1, 2, 3)`, and a bare number element of a VALUES row. Never a
// number compared with another constant (`1 = 1` decides "constant-true WHERE"), an
// ORDER BY / GROUP BY position, a LIMIT, or a SET value.
//
// How the engine uses it (Engine::judge): it judges the shape exactly like a Parse
// message's text, and takes the shape's decision only when that decision is *allow*
// and the text itself passes the statement guard (length, nesting, operators: a shape
// drops signs and shortens long numbers); otherwise it judges the original text. That
// is sound because the engine already judges `$n` without knowing its value (an
// extended-protocol client can bind anything), and no check reads a number that
// stands beside a column: see the invariant above eval() in classify.cc. The tests
// hold the engine to it over the statement corpora and the policy fuzzer compares
// cached with uncached decisions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::policy {

class LiteralShaper {
 public:
  // Writes `sql`'s shape into `out` and returns true when at least one literal was
  // replaced. Returns false (and leaves `out` unspecified) when nothing was replaced,
  // or when the text holds anything this lexer does not fully understand: a `$`
  // (dollar quotes, parameters), a backslash (E'' escapes), an unterminated string,
  // identifier or comment.
  bool shape(std::string_view sql, std::string& out);

 private:
  enum class Kind : uint8_t { word, quoted_word, number, string, op, punct };
  // One lexical token of the text: [begin, end) into it. `clean` (numbers only): a
  // well-formed numeric literal that nothing glues onto (no `1e`, `5abc`, `1.2.3`).
  struct Token {
    Kind kind;
    bool clean;
    uint32_t begin;
    uint32_t end;
  };
  // A literal to replace: tokens [first, last] (a sign and its number).
  struct Replacement {
    uint32_t first;
    uint32_t last;
  };

  bool lex(std::string_view sql);
  bool is_word(size_t i, std::string_view lowercase_word) const;
  bool is_punct(size_t i, char c) const;
  bool is_op(size_t i, std::string_view op) const;
  bool column_ends_at(size_t i) const;
  size_t signed_number_start(size_t number) const;
  void mark_column_operands();
  void mark_lists();
  size_t mark_list_at(size_t open, bool all_or_nothing);

  std::string_view sql_;
  std::vector<Token> tokens_;
  std::vector<Replacement> replacements_;
};

}  // namespace sluice::policy
