//! Container filesystem archives: `docker cp` (GET/HEAD/PUT /containers/{id}/archive), `export`, `diff` (/changes). Issue 5.
