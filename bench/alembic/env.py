"""Alembic environment for the bench: upgrades several databases in one process, the way a
multi-database Alembic setup does, each in turn over its own connection.

-x host=SOCKET_DIR -x port=PORT -x dbs=db1,db2,... ; connects as `postgres` (peer
authentication over the socket: root is mapped to postgres by our pg_ident.conf). Like
hm-migrate, each revision runs in its own transaction as the database's owner.
"""
from alembic import context
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import URL

args = context.get_x_argument(as_dictionary=True)
host, port = args["host"], int(args["port"])

for database in args["dbs"].split(","):
    url = URL.create("postgresql+psycopg", username="postgres", database=database,
                     query={"host": host, "port": str(port)})
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        owner = connection.exec_driver_sql(
            "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database "
            "WHERE datname = current_database()").scalar()
        connection.exec_driver_sql("SET search_path TO public")
        connection.execute(text("SELECT set_config('role', :r, false)"), {"r": owner})
        connection.commit()
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
