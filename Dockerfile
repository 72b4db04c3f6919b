# GraphiQL's pinned npm files are fetched in a Node stage so the final image needs no Node.
FROM node:20-bookworm-slim AS graphiql
WORKDIR /src/bff/graphiql
COPY bff/graphiql/package.json bff/graphiql/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY bff ./bff
COPY schema ./schema
COPY resolvers ./resolvers
COPY demo ./demo
COPY --from=graphiql /src/bff/graphiql/node_modules ./bff/graphiql/node_modules
RUN pip install --no-cache-dir . && useradd --create-home bff
USER bff
# The installed package carries GraphiQL's files too (package data); naming the copied ones makes a
# build that lost them fail at start-up instead of serving a page that needs unpkg.com.
ENV BFF_GRAPHIQL_ASSETS_DIR=/app/bff/graphiql/node_modules BFF_HOST=0.0.0.0 BFF_PORT=8000
EXPOSE 8000
# Shell form, so the check follows BFF_PORT when `docker run -e BFF_PORT=...` moves the server.
HEALTHCHECK --interval=10s --timeout=2s CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('BFF_PORT', '8000') + '/healthz', timeout=2)"
# Point it at your services with BFF_SERVICE_<NAME>_URL; `bff demo` runs the demo services inside.
CMD ["bff", "serve"]
