import AccessStore
import Testing

@Suite("SQL scripts are split into statements")
struct SQLScriptTests {
    @Test("semicolons inside quotes, dollar quotes and comments do not split")
    func respectsQuoting() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE t (a text DEFAULT 'x;y');
            /* block; /* nested; */ still comment */
            CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'a;b'; RETURN NEW; END $$;
            CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;
            SELECT E'it\\'s;', "we;ird" FROM t;
            """
        let statements = SQLScript.statements(in: script)
        #expect(statements.count == 4)
        #expect(statements[0].hasSuffix("CREATE TABLE t (a text DEFAULT 'x;y')"))
        #expect(statements[1].hasSuffix("RETURN NEW; END $$"))
        #expect(statements[2] == "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$")
        #expect(statements[3] == "SELECT E'it\\'s;', \"we;ird\" FROM t")
    }

    @Test("a script of only comments has no statements; positional parameters are not dollar quotes")
    func commentsAndParameters() {
        #expect(SQLScript.statements(in: "-- nothing\n/* here */\n").isEmpty)
        #expect(SQLScript.statements(in: "SELECT $1; SELECT 2") == ["SELECT $1", "SELECT 2"])
    }
}
