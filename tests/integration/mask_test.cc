// Masking through the gateway against a real PostgreSQL: secrets and PII in rows (text
// and binary format, simple and extended protocol, described or not), COPY, errors,
// notices and notifications are rewritten, and no byte the client receives holds a
// raw value. The values are synthetic and written once, as a superuser, into a table
// the test creates.
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

// Synthetic sensitive values (none is a real credential). The GitHub token carries a
// valid CRC32; the card number passes Luhn (cards are masked partially by default:
// the last four digits stay); the SSN is in the issued ranges.
constexpr const char* kAwsKey = "AKIAVQJXXVBOTHD2WTFL";
constexpr const char* kGithubToken = "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";
constexpr const char* kEmail = "carol.kowalski@corp.example.co.uk";
constexpr const char* kSsn = "536-90-4399";
constexpr const char* kCard = "4111 1111 1111 1111";
constexpr const char* kDbPassword = "N7vq2Xw9rLm4zPq";

const std::vector<std::string>& raw_values() {
  static const std::vector<std::string> values = {kAwsKey, kGithubToken, kEmail, kSsn, kCard, kDbPassword};
  return values;
}

// The first raw value found in `bytes`, or "".
std::string leaked(std::string_view bytes) {
  for (const std::string& raw : raw_values())
    if (bytes.find(raw) != std::string_view::npos) return raw;
  return "";
}

class Masking : public GatewayTest {
 protected:
  static void SetUpTestSuite() {
    const std::string db_uri = std::string("postgresql://report:") + kDbPassword + "@db.internal:5432/app";
    PgCluster::shared().superuser_exec(
        "DROP TABLE IF EXISTS mask_notes; "
        "CREATE TABLE mask_notes (id int PRIMARY KEY, body text, doc jsonb, tag varchar(200), n int, "
        "blob bytea, u uuid);"
        "ALTER TABLE mask_notes OWNER TO sluice_app;"
        "INSERT INTO mask_notes VALUES "
        "(1, 'deploy key " + std::string(kAwsKey) + " rotated', '{\"token\": \"" + kGithubToken +
        "\", \"count\": 3}', 'contact " + kEmail + "', 42, convert_to('" + kGithubToken + "', 'UTF8'), "
        "'6026b2f0-24ed-4e01-9720-852dc0e34232'),"
        "(2, 'ssn " + kSsn + " card " + kCard + "', '[1, 2]', '" + db_uri + "', 7, NULL, NULL),"
        "(3, 'nothing to see here', '{}', 'plain', 1, '\\x00ff', NULL);"
        "CREATE OR REPLACE FUNCTION mask_notice(t text) RETURNS int LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE NOTICE 'value is %', t USING DETAIL = 'detail ' || t; RETURN 1; END $$;"
        "ALTER FUNCTION mask_notice(text) OWNER TO sluice_app;");
  }
  static void TearDownTestSuite() { PgCluster::shared().superuser_exec("DROP TABLE IF EXISTS mask_notes"); }

  // Reads the statement records and outcomes of the audit trail, in order.
  std::vector<std::string> audit_lines() {
    std::vector<std::string> lines;
    for (const auto& entry : std::filesystem::directory_iterator(gw().audit_dir())) {
      if (entry.path().extension() != ".jsonl") continue;
      std::string text = read_file(entry.path());
      size_t at = 0;
      while (at < text.size()) {
        size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        lines.push_back(text.substr(at, end - at));
        at = end + 1;
      }
    }
    return lines;
  }
};

TEST_F(Masking, SimpleQueryRowsAreMaskedAndNothingRawArrives) {
  RawClient c;
  ASSERT_TRUE(login(c, gw().port(), "alice", kAlicePassword, "app"));
  ASSERT_TRUE(c.send(wire::query("SELECT id, body, doc, tag, n, blob, u FROM mask_notes ORDER BY id")));
  const auto messages = c.read_until_ready();
  std::vector<Message> rows;
  for (const auto& m : messages)
    if (m.type == 'D') rows.push_back(m);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(leaked(c.received()), "") << "a raw value reached the client";
  const std::string all = c.received();
  EXPECT_NE(all.find("deploy key [masked:aws_access_key_id] rotated"), std::string::npos) << render(rows[0]);
  EXPECT_NE(all.find("\"token\": \"[masked:github_token]\""), std::string::npos) << render(rows[0]);
  EXPECT_NE(all.find("contact [masked:email]"), std::string::npos) << render(rows[0]);
  EXPECT_NE(all.find("[masked:us_ssn]"), std::string::npos) << render(rows[1]);
  EXPECT_NE(all.find("card **** **** **** 1111"), std::string::npos) << render(rows[1]);  // partial:4 by default
  // Values with nothing in them, and columns of types that hold no text, pass as they are.
  EXPECT_NE(all.find("nothing to see here"), std::string::npos);
  EXPECT_NE(all.find("6026b2f0-24ed-4e01-9720-852dc0e34232"), std::string::npos);
}

TEST_F(Masking, MaskedJsonStaysValidJsonAndTypesStayDecodable) {
  Conn conn(gw().conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error();
  // Send the masked values back to PostgreSQL: each must still parse as its type.
  const Rows rows = query(conn, "SELECT doc::text, body, tag FROM mask_notes WHERE id = 1");
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(rows[0][0].has_value());
  Conn direct(pg().direct_conninfo());
  ASSERT_TRUE(direct.ok()) << direct.error();
  const char* params[] = {rows[0][0]->c_str()};
  Result r(PQexecParams(direct, "SELECT $1::jsonb ->> 'token'", 1, nullptr, params, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get()) << " for " << *rows[0][0];
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), "[masked:github_token]");
}

TEST_F(Masking, BinaryFormatRowsAreMasked) {
  Conn conn(gw().conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error();
  Result r(PQexecParams(conn, "SELECT body, doc, tag, n, blob FROM mask_notes WHERE id = 1", 0, nullptr, nullptr,
                        nullptr, nullptr, /*resultFormat=*/1));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
  const std::string body(PQgetvalue(r.get(), 0, 0), PQgetlength(r.get(), 0, 0));
  EXPECT_EQ(body, "deploy key [masked:aws_access_key_id] rotated");
  // jsonb in binary: version byte 1, then the text.
  const std::string doc(PQgetvalue(r.get(), 0, 1), PQgetlength(r.get(), 0, 1));
  ASSERT_FALSE(doc.empty());
  EXPECT_EQ(doc[0], '\x01');
  EXPECT_NE(doc.find("[masked:github_token]"), std::string::npos) << doc;
  EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 2), PQgetlength(r.get(), 0, 2)), "contact [masked:email]");
  // int4 in binary: 42, untouched.
  ASSERT_EQ(PQgetlength(r.get(), 0, 3), 4);
  uint32_t n;
  std::memcpy(&n, PQgetvalue(r.get(), 0, 3), 4);
  EXPECT_EQ(ntohl(n), 42u);
  // bytea holding a token: its bytes are rewritten like text.
  const std::string blob(PQgetvalue(r.get(), 0, 4), PQgetlength(r.get(), 0, 4));
  EXPECT_EQ(blob.find(kGithubToken), std::string::npos);
}

TEST_F(Masking, HexByteaInTextFormatIsDecodedAndMaskedWhole) {
  Conn conn(gw().conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error();
  const Rows rows = query(conn, "SELECT blob FROM mask_notes WHERE id IN (1, 3) ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_TRUE(rows[0][0].has_value());
  // The token, hex-encoded, would have slipped past a scanner of the text form.
  EXPECT_EQ(rows[0][0]->find("6768705f"), std::string::npos) << *rows[0][0];
  EXPECT_EQ(rows[1][0], std::optional<std::string>("\\x00ff"));
}

TEST_F(Masking, ExtendedProtocolWithoutPortalDescribeMasksWholeValues) {
  // A driver that cached the statement's description sends Bind/Execute without a
  // Describe: the rows arrive without a RowDescription, so their types are unknown.
  RawClient c;
  ASSERT_TRUE(login(c, gw().port(), "alice", kAlicePassword, "app"));
  ASSERT_TRUE(c.send(wire::parse("s1", "SELECT body, n FROM mask_notes WHERE id = 1") + wire::describe('S', "s1") +
                     wire::sync()));
  c.read_until_ready();
  ASSERT_TRUE(c.send(wire::bind("", "s1", {}, {1, 1}) + wire::execute("") + wire::sync()));
  const auto messages = c.read_until_ready();
  const auto row = std::find_if(messages.begin(), messages.end(), [](const Message& m) { return m.type == 'D'; });
  ASSERT_NE(row, messages.end());
  EXPECT_EQ(leaked(c.received()), "");
  // body (a finding, type unknown here) is NULL; n (nothing found) is its 4 bytes.
  EXPECT_EQ(row->body, wire::be16(2) + wire::be32(-1) + wire::be32(4) + wire::be32(42)) << render(*row);
}

TEST_F(Masking, ErrorsAndNoticesAreMasked) {
  RawClient c;
  ASSERT_TRUE(login(c, gw().port(), "alice", kAlicePassword, "app"));
  // invalid input syntax for type integer: "<the key>"
  ASSERT_TRUE(c.send(wire::query(std::string("SELECT '") + kAwsKey + "'::int")));
  auto messages = c.read_until_ready();
  auto error = std::find_if(messages.begin(), messages.end(), [](const Message& m) { return m.type == 'E'; });
  ASSERT_NE(error, messages.end());
  auto fields = parse_fields(error->body);
  EXPECT_EQ(fields['C'], "22P02");
  EXPECT_NE(fields['M'].find("[masked:aws_access_key_id]"), std::string::npos) << fields['M'];
  // A unique violation's DETAIL quotes the duplicate key.
  ASSERT_TRUE(c.send(wire::query(std::string("INSERT INTO accounts (email) VALUES ('") + kEmail + "'), ('" + kEmail +
                                 "')")));
  messages = c.read_until_ready();
  error = std::find_if(messages.begin(), messages.end(), [](const Message& m) { return m.type == 'E'; });
  ASSERT_NE(error, messages.end());
  fields = parse_fields(error->body);
  EXPECT_EQ(fields['C'], "23505");
  EXPECT_NE(fields['D'].find("[masked:email]"), std::string::npos) << fields['D'];
  // A notice raised with a secret in its message and detail.
  ASSERT_TRUE(c.send(wire::query(std::string("SELECT mask_notice('") + kGithubToken + "')")));
  messages = c.read_until_ready();
  auto notice = std::find_if(messages.begin(), messages.end(), [](const Message& m) { return m.type == 'N'; });
  ASSERT_NE(notice, messages.end());
  fields = parse_fields(notice->body);
  EXPECT_EQ(fields['M'], "value is [masked:github_token]");
  EXPECT_EQ(fields['D'], "detail [masked:github_token]");
  EXPECT_EQ(leaked(c.received()), "");
}

TEST_F(Masking, NotificationPayloadsAreMasked) {
  Conn listener(gw().conninfo());
  ASSERT_TRUE(listener.ok()) << listener.error();
  query(listener, "LISTEN mask_channel");
  Conn sender(pg().direct_conninfo());
  ASSERT_TRUE(sender.ok()) << sender.error();
  query(sender, std::string("NOTIFY mask_channel, 'key ") + kAwsKey + "'");
  PGnotify* notify = nullptr;
  for (int i = 0; i < 100 && notify == nullptr; ++i) {
    PQconsumeInput(listener);
    notify = PQnotifies(listener);
    if (notify == nullptr) std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE(notify, nullptr) << "no notification arrived";
  EXPECT_STREQ(notify->relname, "mask_channel");
  EXPECT_STREQ(notify->extra, "key [masked:aws_access_key_id]");
  PQfreemem(notify);
}

// COPY ... TO STDOUT through libpq; returns the data, or "ERROR: ..." on failure.
std::string copy_out(PGconn* conn, const std::string& sql) {
  Result r(PQexec(conn, sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COPY_OUT) return std::string("ERROR: ") + PQerrorMessage(conn);
  std::string data;
  char* buffer = nullptr;
  int n;
  while ((n = PQgetCopyData(conn, &buffer, 0)) > 0) {
    data.append(buffer, static_cast<size_t>(n));
    PQfreemem(buffer);
  }
  Result end(PQgetResult(conn));
  if (PQresultStatus(end.get()) != PGRES_COMMAND_OK) return std::string("ERROR: ") + PQerrorMessage(conn);
  return data;
}

TEST_F(Masking, CopyToStdoutInTextAndCsvIsMasked) {
  Conn conn(gw().conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error();
  const std::string text = copy_out(conn, "COPY (SELECT id, body, tag FROM mask_notes ORDER BY id) TO STDOUT");
  EXPECT_EQ(leaked(text), "") << text;
  EXPECT_NE(text.find("1\tdeploy key [masked:aws_access_key_id] rotated\tcontact [masked:email]\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("3\tnothing to see here\tplain\n"), std::string::npos) << text;
  const std::string csv = copy_out(conn, "COPY mask_notes (id, body, doc) TO STDOUT WITH (FORMAT csv)");
  EXPECT_EQ(leaked(csv), "") << csv;
  EXPECT_NE(csv.find("[masked:github_token]"), std::string::npos) << csv;
  // Three lines: nothing was lost or merged.
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3) << csv;
}

TEST_F(Masking, BinaryCopyFieldsWithFindingsArriveAsNullAndTheStreamStaysLoadable) {
  Conn conn(gw().conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error();
  const std::string data =
      copy_out(conn, "COPY (SELECT id, body, n FROM mask_notes ORDER BY id) TO STDOUT WITH (FORMAT binary)");
  ASSERT_EQ(data.rfind("PGCOPY\n", 0), 0u) << data;
  EXPECT_EQ(leaked(data), "");
  // PostgreSQL itself must accept what sluice sent: load it back, directly.
  Conn direct(pg().direct_conninfo());
  ASSERT_TRUE(direct.ok()) << direct.error();
  Result created(PQexec(direct, "CREATE TEMP TABLE copied (id int, body text, n int)"));
  ASSERT_EQ(PQresultStatus(created.get()), PGRES_COMMAND_OK) << PQerrorMessage(direct);
  Result in(PQexec(direct, "COPY copied FROM STDIN WITH (FORMAT binary)"));
  ASSERT_EQ(PQresultStatus(in.get()), PGRES_COPY_IN) << PQerrorMessage(direct);
  ASSERT_EQ(PQputCopyData(direct, data.data(), static_cast<int>(data.size())), 1);
  ASSERT_EQ(PQputCopyEnd(direct, nullptr), 1);
  Result loaded(PQgetResult(direct));
  ASSERT_EQ(PQresultStatus(loaded.get()), PGRES_COMMAND_OK) << PQerrorMessage(direct);
  const Rows rows = query(direct, "SELECT id, body, n FROM copied ORDER BY id");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_FALSE(rows[0][1].has_value()) << "the body with a key arrives as NULL";
  EXPECT_EQ(rows[0][2].value_or("NULL"), "42") << "the other fields of its row are intact";
  EXPECT_FALSE(rows[1][1].has_value());
  EXPECT_EQ(rows[2][1].value_or("NULL"), "nothing to see here");
}

// A row over max_message_bytes can be neither held to be masked nor cut short.
class MaskingSmallCap : public GatewayTest {
 protected:
  SluicedOptions options() override { return {.max_message_bytes = "64KiB"}; }
};

TEST_F(MaskingSmallCap, AnOversizedRowCancelsItsQueryAndTheSessionGoesOn) {
  Conn conn(gw().conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error();
  for (const char* sql : {"SELECT 1 AS small UNION ALL SELECT length(repeat('x', 200000)) UNION ALL "
                          "SELECT length(repeat('y', 100)) ORDER BY 1",
                          "SELECT repeat('x', 200000)", "COPY (SELECT repeat('x', 200000)) TO STDOUT"}) {
    Result r(PQexec(conn, sql));
    if (std::string(sql).find("length(") != std::string::npos) {
      EXPECT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << "small rows are not affected: " << PQerrorMessage(conn);
      continue;
    }
    if (PQresultStatus(r.get()) == PGRES_COPY_OUT) {
      char* buffer = nullptr;
      while (PQgetCopyData(conn, &buffer, 0) > 0) PQfreemem(buffer);
      r.reset(PQgetResult(conn));
    }
    EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR) << sql;
    EXPECT_STREQ(PQresultErrorField(r.get(), PG_DIAG_SQLSTATE), "54000") << PQresultErrorMessage(r.get());
    EXPECT_NE(std::string(PQresultErrorMessage(r.get())).find("cancelled the query"), std::string::npos)
        << PQresultErrorMessage(r.get());
    while (Result extra{PQgetResult(conn)}) {
    }
    // The session goes on.
    const Rows after = query(conn, "SELECT 'still here'");
    ASSERT_EQ(after.size(), 1u) << sql << ": " << PQerrorMessage(conn);
    EXPECT_EQ(after[0][0].value_or(""), "still here");
  }
}

TEST_F(Masking, BindParametersAreMaskedInTheAuditTrail) {
  {
    Conn conn(gw().conninfo());
    ASSERT_TRUE(conn.ok()) << conn.error();
    const std::string secret = std::string("rotate ") + kAwsKey + " today";
    const char* params[] = {secret.c_str(), "plain words", kGithubToken};
    const int formats[] = {0, 0, 1};
    const int lengths[] = {0, 0, static_cast<int>(std::strlen(kGithubToken))};
    Result r(PQexecParams(conn, "SELECT length($1::text) + length($2::text) + length($3::bytea)", 3, nullptr, params,
                          lengths, formats, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
  }
  ASSERT_EQ(gw().stop(), 0);
  bool found = false;
  for (const std::string& line : audit_lines()) {
    EXPECT_EQ(leaked(line), "") << "a raw value reached the audit trail: " << line;
    if (line.find(R"("params")") == std::string::npos) continue;
    found = true;
    EXPECT_NE(line.find(R"({"masked":"rotate [masked:aws_access_key_id] today"})"), std::string::npos) << line;
    EXPECT_NE(line.find(R"("plain words")"), std::string::npos) << "a clean parameter is recorded as sent: " << line;
    EXPECT_NE(line.find(R"({"masked":"[masked:github_token]"})"), std::string::npos)
        << "a binary parameter is replaced whole: " << line;
  }
  EXPECT_TRUE(found) << "no statement record with params";
}

TEST_F(Masking, PsqlShowsPlaceholdersAndTheAuditCountsMaskedValues) {
  ProgramOptions o;
  o.env = {"PGPASSWORD=" + std::string(kAlicePassword)};
  const ProgramResult r = run_program({pg().bin("psql"), "-X", "-A", "-t", "-h", "127.0.0.1", "-p",
                                       std::to_string(gw().port()), "-U", "alice", "-d", "app", "-c",
                                       "SELECT body FROM mask_notes ORDER BY id"},
                                      o);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "deploy key [masked:aws_access_key_id] rotated\n"
            "ssn [masked:us_ssn] card **** **** **** 1111\n"
            "nothing to see here\n");
  ASSERT_EQ(gw().stop(), 0);
  // A masked session's start record does not claim clear text.
  for (const std::string& line : audit_lines()) {
    if (line.find("\"type\":\"session_start\"") != std::string::npos) {
      EXPECT_EQ(line.find("clear_text"), std::string::npos) << line;
    }
  }
  // The statement's outcome record counts what was masked, by kind.
  bool found = false;
  for (const std::string& line : audit_lines()) {
    if (line.find("\"type\":\"outcome\"") == std::string::npos || line.find("\"masked\"") == std::string::npos)
      continue;
    if (line.find("\"aws_access_key_id\":1") != std::string::npos && line.find("\"us_ssn\":1") != std::string::npos &&
        line.find("\"card_number\":1") != std::string::npos)
      found = true;
  }
  EXPECT_TRUE(found) << "no outcome record with the masked counts";
}

class MaskingExempt : public Masking {
 protected:
  SluicedOptions options() override {
    SluicedOptions o;
    o.mask_toml = "[mask]\nexempt_groups = [\"dev\"]\n";  // alice and bob are in dev
    return o;
  }
};

TEST_F(MaskingExempt, ExemptGroupSeesClearText) {
  Conn conn(gw().conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error();
  EXPECT_EQ(query_value(conn, "SELECT body FROM mask_notes WHERE id = 1"),
            std::string("deploy key ") + kAwsKey + " rotated");
  conn.reset();
  ASSERT_EQ(gw().stop(), 0);
  // The audit trail shows that this session saw clear text.
  const auto lines = audit_lines();
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& line) {
    return line.find("\"type\":\"session_start\"") != std::string::npos &&
           line.find("\"clear_text\":true") != std::string::npos;
  }));
}

class MaskingOperatorPatterns : public Masking {
 protected:
  SluicedOptions options() override {
    SluicedOptions o;
    o.mask_toml =
        "[mask]\npii = false\n"
        "[mask.strategies]\naws_access_key_id = \"partial:4\"\n"
        "[[mask.pattern]]\nkind = \"ticket_id\"\nregex = 'TCK-[0-9]{6}'\nstrategy = \"redact\"\n";
    return o;
  }
};

TEST_F(MaskingOperatorPatterns, UserPatternsStrategiesAndTierSwitchesApply) {
  Conn conn(gw().conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error();
  EXPECT_EQ(query_value(conn, "SELECT 'see TCK-123456 now'"), "see [masked:ticket_id] now");
  // partial keeps the last 4 letters and digits.
  EXPECT_EQ(query_value(conn, "SELECT body FROM mask_notes WHERE id = 1"), "deploy key ****************WTFL rotated");
  // PII scanning is off: the e-mail address passes.
  EXPECT_EQ(query_value(conn, "SELECT tag FROM mask_notes WHERE id = 1"), std::string("contact ") + kEmail);
}

}  // namespace
}  // namespace sluice::it
