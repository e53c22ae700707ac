"""What equality and order mean for titles, the same on every supported MariaDB (10.11 natively,
11.8 in the containers): Unicode 14's rules, ignoring case and accents, telling emoji apart."""

TITLES = ["Straße", "STRASSE", "strasse", "é", "e", "😀", "😁", "b", "A"]


def test_titles_compare_and_sort_by_unicode_rules_ignoring_case_and_accents(stack, burst_writer):
    ids = []
    for title in TITLES:
        created = burst_writer.post(
            stack.base_url + "/api/posts", json={"title": title, "body": "x"}
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    these = f"id IN ({','.join(map(str, ids))})"

    def titles_where(condition):
        # utf8mb4 text both ways, whatever the client's default (10.11's is utf8mb3).
        rows = stack.root_sql(
            f"SELECT title FROM app.posts WHERE {these} AND {condition} ORDER BY title, id"
        )
        return rows.splitlines()

    # ß is ss, and case does not count.
    assert titles_where("title = 'strasse'") == ["Straße", "STRASSE", "strasse"]
    # Accents do not count either.
    assert titles_where("title = 'E'") == ["é", "e"]
    # Two emoji are two different titles (utf8mb4_unicode_ci would find both).
    assert titles_where("title = '😀'") == ["😀"]
    # Symbols before letters, letters alphabetically whatever their case; ties in insertion order.
    assert titles_where("TRUE") == ["😀", "😁", "A", "b", "é", "e", "Straße", "STRASSE", "strasse"]
    # The schema says so itself, for the next table too.
    column = stack.root_sql(
        "SELECT COLLATION_NAME FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'posts' AND COLUMN_NAME = 'title'"
    )
    schema = stack.root_sql(
        "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'app'"
    )
    assert (column.strip(), schema.strip()) == ("utf8mb4_uca1400_ai_ci", "utf8mb4_uca1400_ai_ci")
