"""What the restore drills share: posts made through the API, and the state they compare."""

POSTS = "/api/posts"


def posts_state(stack):
    """(rows, CHECKSUM TABLE) of app.posts: equal only for the very same rows."""
    sql = "SELECT COUNT(*) FROM app.posts; CHECKSUM TABLE app.posts;"
    count, _, checksum = stack.root_sql(sql).split()
    return int(count), checksum


def create_post(stack, writer, title):
    response = writer.post(stack.base_url + POSTS, json={"title": title, "body": f"{title} body"})
    assert response.status_code == 201, response.text
    return response.json()["id"]
