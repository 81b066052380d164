"""PostgreSQL: the pool, the migrations, and one module of named queries per aggregate."""
