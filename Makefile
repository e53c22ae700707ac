# Every routine job of the stack, for people and CI. `make` alone lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV    ?= .venv
PYTHON  := $(VENV)/bin/python
PYTEST  := $(PYTHON) -m pytest
# Files named explicitly: a COMPOSE_FILE in the environment or .env cannot turn `make down` into
# a command on production (its own project, hardened-stack-prod).
COMPOSE := docker compose -f compose.yaml
PROD    := $(COMPOSE) -f compose.prod.yaml
# Compose v2 from the test venv when the docker CLI has no compose plugin.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# The settings make, the scripts and compose share come from one place, taken the way compose
# takes them: the environment or make's command line, else .env, else the compose files' default.
# So `make secrets` writes where compose reads.
# $(call dotenv,NAME): NAME's value in .env, parsed as compose does for these lines (the last one
# wins; `export`, surrounding quotes and a trailing " # comment" are dropped).
HASH := \#
dotenv = $(shell [ -f .env ] && sed -n -E \
  -e 's/^[[:space:]]*(export[[:space:]]+)?$(1)[[:space:]]*=[[:space:]]*//; T' \
  -e 's/^"([^"]*)".*/\1/p; t' -e "s/^'([^']*)'.*/\1/p; t" \
  -e 's/[[:space:]]+$(HASH).*//; s/[[:space:]]+$$//; p' .env | tail -n 1)
SECRETS_DIR ?= $(or $(call dotenv,SECRETS_DIR),./secrets)
CERTS_DIR   ?= $(or $(call dotenv,CERTS_DIR),./certs)
BACKUP_DIR  ?= $(or $(call dotenv,BACKUP_DIR),./backups)
BACKUP_COPY_DIR ?= $(or $(call dotenv,BACKUP_COPY_DIR),./backup-copy)
SERVER_NAME ?= $(call dotenv,SERVER_NAME)
HTTP_PORT   ?= $(call dotenv,HTTP_PORT)
HTTPS_PORT  ?= $(call dotenv,HTTPS_PORT)
SWARM_STACK ?= $(call dotenv,SWARM_STACK)
REGISTRY    ?= $(call dotenv,REGISTRY)
IMAGE_TAG   ?= $(call dotenv,IMAGE_TAG)
export SECRETS_DIR CERTS_DIR BACKUP_DIR BACKUP_COPY_DIR
# The operations (backup, restore, rotate-secret, rotate-token, retire-tokens, reload-proxy,
# restart-backend, deploy, migrate-contract, db-shell; rollback: compose only) act on the native
# stack while `make native-up`'s one runs, else on production (scripts/lib/stack.sh tells which);
# RUNTIME=compose|native|swarm chooses (swarm: SWARM_STACK, on the node that runs the database).
RUNTIME ?=
# Only when set: an empty value would hide the defaults of the scripts and the native runner.
$(foreach name,SERVER_NAME HTTP_PORT HTTPS_PORT SWARM_STACK REGISTRY IMAGE_TAG,$(if $($(name)),$(eval export $(name))))

.PHONY: help deps venv certs secrets docker-check up down logs ps prod-up prod-down \
        native-up native-down lint test test-backend test-static test-e2e test-compose test-swarm \
        backup-dir backup restore rotate-secret rotate-token retire-tokens reload-proxy restart-backend \
        deploy rollback migrate-contract \
        db-shell bench \
        swarm-init swarm-secrets swarm-images swarm-config swarm-deploy swarm-migrate swarm-rm

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  \033[1m%-13s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## Install the Debian packages the native tiers and the browser test need (disables their services)
	@scripts/install-deps.sh

venv: $(VENV)/.installed ## Create the test venv (.venv) from tests/requirements.txt

$(VENV)/.installed: tests/requirements.txt backend/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

certs: ## Create the dev CA and server certificate in CERTS_DIR (keeps valid ones)
	@scripts/make-certs.sh

secrets: ## Create random database passwords in SECRETS_DIR (keeps existing ones)
	@scripts/make-secrets.sh

docker-check:
	@docker info >/dev/null 2>&1 || { echo "Docker engine not reachable: install Docker (docker.io) and start it, or use 'make native-up'." >&2; exit 1; }

up: docker-check certs secrets ## Start the dev stack (hot reload, self-signed TLS) and wait until healthy
	$(COMPOSE) up -d --build --wait
	@echo "Stack up: https://localhost:$${HTTPS_PORT:-443}/  (trust certs/dev-ca.crt)"

# --profile '*': without it, `down` leaves the containers and networks of the profiles (backup,
# monitoring, certbot) it is not given.
down: docker-check ## Stop the dev stack, every profile's services too (keeps the volumes)
	$(COMPOSE) --profile '*' down

logs: docker-check ## Follow the dev stack's logs
	$(COMPOSE) logs -f --tail=100

ps: docker-check ## Show the dev stack's services and health
	$(COMPOSE) ps

prod-up: docker-check secrets ## Start production on this host (needs SERVER_NAME and certs/server.{crt,key})
	$(PROD) up -d --build --wait

prod-down: docker-check ## Stop production, every profile's services too (keeps the volumes)
	$(PROD) --profile '*' down

# --- Docker Swarm: compose.swarm.yaml on a swarm (docs/swarm.md). SWARM_STACK names the
# stack; REGISTRY and IMAGE_TAG name its images (scripts/lib/swarm.sh). ---
swarm-init: docker-check ## Make this engine a single-node swarm, labelled to run the db and the proxy
	@scripts/swarm-init.sh

swarm-secrets: docker-check certs secrets ## Create the stack's Swarm secrets from SECRETS_DIR and CERTS_DIR
	@scripts/swarm-secrets.sh

swarm-images: docker-check ## Build the backend and proxy images for Swarm (and push them if REGISTRY is set)
	@scripts/swarm-images.sh

swarm-config: ## Print the stack file that swarm-deploy deploys (the compose files, rendered)
	@scripts/swarm-render.sh

swarm-deploy: docker-check backup-dir ## Deploy or update the Swarm stack: migrate, then roll out (or roll back)
	@scripts/swarm-deploy.sh

swarm-migrate: docker-check ## Run the expand migrations on Swarm now, with BACKEND_IMAGE (contract: make migrate-contract RUNTIME=swarm)
	@scripts/swarm-migrate.sh

swarm-rm: docker-check ## Remove the Swarm stack (its database volume, secrets and the swarm stay)
	@scripts/swarm-rm.sh

native-up: deps venv certs secrets ## Run the whole stack as local processes on 127.0.0.1 (no Docker)
	$(PYTHON) -m native up

native-down: venv ## Stop what native-up started and remove its run directory
	$(PYTHON) -m native down

# Its own native stack, with the per-client limits lifted for that run only (tools/bench).
bench: deps venv certs secrets $(VENV)/.bench-installed ## Load report (wrk, ~4 min): table, ratios, profile; .run/bench/ (BENCH_C_DRIVER=1: also PyMySQL against mysqlclient)
	$(if $(filter 1,$(BENCH_C_DRIVER)),$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/bench/requirements-c-driver.txt)
	$(PYTHON) -m tools.bench

$(VENV)/.bench-installed: tools/bench/requirements.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/bench/requirements.txt
	touch $@

backup-dir: ## Create BACKUP_DIR and BACKUP_COPY_DIR for Swarm's backup service (0700, uid 999; root; compose does it itself)
	@for dir in "$(BACKUP_DIR)" "$(BACKUP_COPY_DIR)"; do \
	  if [[ $$(stat -c %u:%a "$$dir" 2>/dev/null) == 999:700 ]]; then echo "kept     $$dir"; \
	  else install -d -m 0700 -o 999 -g 999 "$$dir" && echo "created  $$dir (0700, uid 999)"; fi; done

backup restore rotate-secret rotate-token retire-tokens reload-proxy restart-backend deploy rollback migrate-contract db-shell: export STACK_RUNTIME = $(RUNTIME)

backup: ## Take a backup now into BACKUP_DIR (of the native stack when one runs, else of production)
	@scripts/backup-now.sh

restore: ## Restore FILE=<backup>; UNTIL="YYYY-MM-DD HH:MM:SS" (UTC) or <binlog>:<pos> replays to there
	@[[ -n "$(FILE)" ]] || { echo 'usage: make restore FILE=<backup .sql.gz> [UNTIL="YYYY-MM-DD HH:MM:SS" | UNTIL=<binlog>:<pos>]' >&2; exit 2; }
	@scripts/restore.sh "$(FILE)" $(if $(UNTIL),--until "$(UNTIL)")

rotate-secret: ## New password for NAME=db_app_password|db_migrator_password|db_backup_password|db_root_password
	@[[ -n "$(NAME)" ]] || { echo 'usage: make rotate-secret NAME=db_app_password' >&2; exit 2; }
	@scripts/rotate-secret.sh "$(NAME)"

rotate-token: ## Add a new API write token (printed) and move the backends to it, one at a time; the old ones still work
	@scripts/rotate-token.sh add

retire-tokens: ## Keep only the newest API write token (after make rotate-token) and move the backends, one at a time
	@scripts/rotate-token.sh retire

reload-proxy: ## nginx re-reads its configuration and certificates, dropping no request (after make certs)
	@scripts/reload-proxy.sh

restart-backend: ## Restart the backend one replica at a time, dropping no request (after changing its environment)
	@scripts/restart-backend.sh

deploy: ## This checkout's backend: its expand migrations, then the replicas one at a time (natively: gunicorn's reload)
	@scripts/deploy.sh

rollback: docker-check ## Production (compose): back to the backend image the last deploy replaced, replica by replica
	@scripts/deploy.sh rollback

migrate-contract: ## Run the contract migrations (drop what no running code uses); refused while a replica runs older code
	@scripts/migrate-contract.sh

db-shell: ## A root SQL shell on the database (SQL on stdin works too)
	@scripts/db-shell.sh

# The checks are listed once, as the pre-commit hooks (.pre-commit-config.yaml): here on every
# tracked file. The compose policy hook is skipped only because tests/static runs it anyway.
lint: venv ## Static tier: ruff, hadolint, shellcheck (the pre-commit hooks), nginx -t and the compose policy
	SKIP=compose-policy $(VENV)/bin/pre-commit run --all-files --color=never
	$(PYTEST) tests/static

test-backend: venv ## Backend tier: the app against a real MariaDB
	$(PYTEST) tests/backend

test-static: lint ## Static tier (same as lint)

test-e2e: venv ## Native e2e tier: end-to-end against the native stack
	$(PYTEST) tests/e2e -m "not compose and not swarm"

test-compose: venv ## Compose tier: end-to-end and container checks against compose (dev+prod)
	images="$$(scripts/prepare-docker.sh)"; export $$images; \
	$(PYTEST) tests/e2e tests/containers -m compose

test-swarm: venv ## Swarm tier: end-to-end and Swarm checks against a single-node swarm
	images="$$(scripts/prepare-docker.sh)"; export $$images; \
	$(PYTEST) tests/e2e tests/swarm -m swarm

test: venv lint ## Every tier: static, backend, native e2e, compose e2e, swarm
	images="$$(scripts/prepare-docker.sh)"; export $$images; \
	$(PYTEST) tests/backend tests/e2e tests/containers tests/swarm
