# HearthMinds bootstrap. Run as root: setup and the tests install packages and start
# throwaway PostgreSQL clusters.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

# Build and test dependencies (Debian 12). The runtime needs only libpq5; install.sh sees to it.
# The second line builds the pgvector package of `make dist` (Debian's packaging of pgvector).
# man-db (with groff-base): the dist smoke test renders the shipped man pages. pkg-config: the
# build finds libpq's headers through it (Sources/CLibPQ); procps: tests wait with pgrep.
SETUP_PACKAGES := libpq-dev libpq5 postgresql-15 postgresql-client-15 postgresql-common \
	debootstrap util-linux passwd ca-certificates binutils file iproute2 curl man-db procps pkg-config \
	build-essential dpkg-dev debhelper postgresql-server-dev-all architecture-properties \
	openssh-client python3-venv pgbackrest

# The pgvector package the release tarball ships (PGVECTOR_INSTALL_METHOD=shipped): Debian's own
# pgvector source package, pinned by suite, version and the SHA-256 of its .dsc, fetched from
# this machine's Debian mirror and built with Debian's packaging for PostgreSQL 15 by
# hm-pgvector-deb. To move the pin: check the new source, then change the version and digest.
PGVECTOR_DEB_PG := 15
PGVECTOR_DEB_SUITE := trixie
PGVECTOR_DEB_SOURCE_VERSION := 0.8.0-1
PGVECTOR_DEB_DSC_SHA256 := a71780bf7ab9901094a3d9869c489b6e2bcb858a8c14a5fa52d159933e016308
# ~: sorts below Debian's own build of the same version, which then replaces ours on an upgrade
PGVECTOR_DEB_SUFFIX := ~hm12+2
PGVECTOR_DEB_DIR := .build/pgvector-deb

DIST_NAME := hearthminds-bootstrap
# The commands (links, man pages, completions) are the executable's own list: `hearthminds
# --list` (the steps, as bootstrap/steps has them) and `--list-tools` (hm-reset, hm-migrate,
# hm-restore, hm-run-metrics), from the one list of definitions (CommandDefinitions.all).
# The man pages' generator: swift-argument-parser's own generate-manual tool (what its
# GenerateManual plugin runs), built from this package's checkout of the dependency, at the
# version Package.resolved pins (no network). The plugin cannot be used: it runs each executable
# product by its own name, and hearthminds answers only by a command's name.
ARGUMENT_PARSER_DIR := .build/checkouts/swift-argument-parser
GENERATE_MANUAL := swift build --package-path $(ARGUMENT_PARSER_DIR) --scratch-path .build/argument-parser-tools \
	--product generate-manual

.PHONY: setup build check test test-swift test-fresh test-e2e test-fleet dist clean migrate-rev migrate-up migrate-down bench bench-recall bench-backup bench-vectors

## setup: install the packages the build and the tests need (apt-get; skipped when present),
## then pgvector for PostgreSQL 15 (hm-pgvector --install-only)
setup:
	missing=$$(for p in $(SETUP_PACKAGES); do \
		dpkg-query -W -f '$${Status}\n' "$$p" 2>/dev/null | grep -q 'install ok installed' || echo "$$p"; done)
	if [ -n "$$missing" ]; then
		echo "-- installing: $$missing"
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null
	fi
	# postgresql-common's package creates and starts a "main" cluster; the tests use their own.
	command -v swift >/dev/null || { echo "no Swift toolchain on the PATH (https://www.swift.org/install/linux/)"; exit 1; }
	# pgvector's files for PostgreSQL 15, by the pgvector step itself (its install actions only:
	# the tests make their own clusters). A host that has them builds nothing.
	swift build --product hearthminds
	HEARTHMINDS_LOG=$(CURDIR)/.build/setup-bootstrap.jsonl \
		"$$(swift build --show-bin-path)/hearthminds" pgvector --install-only --set PG_VERSION=15

## build: release build of the executable (hearthminds, every step's command)
build:
	swift build -c release

## test: everything CI runs: the Swift tiers (test-swift), then the release tarball's smoke
## test, the end-to-end tier on fresh Debian 12 roots, the fleet tier (the Ansible role on three
## hosts over SSH), and the fresh-machine tier (setup and the Swift tiers in a new Debian 12 root)
test: test-swift
	$(MAKE) dist
	Tests/dist/smoke.sh
	Tests/e2e/run.sh
	Tests/fleet/run.sh
	Tests/fresh/run.sh

# The integration suites (Tests/HearthKitTests/Integration/): make check skips them.
INTEGRATION_SUITES := $(shell sed -n 's/^struct \([A-Za-z0-9_]*\).*/\1/p' Tests/HearthKitTests/Integration/*.swift | paste -sd'|')

## test-swift: setup, then the unit and integration tiers (real PostgreSQL 15 clusters) in a
## private mount namespace (Tests/private-host.sh): the host's own /etc/hearthminds, logs, run
## lock and PostgreSQL clusters are out of the tests' sight and reach
test-swift: setup
	swift build --build-tests
	# In the namespace, the run lock is held for the whole Swift run: no test may take it (each
	# gives its steps a lock directory of its own, as the suites run side by side), and one that
	# did would then fail every time instead of now and then.
	# On a failure, the failed tests and their issues again at the end (a CI log's tail shows them).
	Tests/private-host.sh /bin/sh -c 'install -d -m 0700 /run/hearthminds && \
		exec flock -n -o /run/hearthminds/bootstrap.lock swift test --skip-build' 2>&1 | tee .build/test-swift.log || {
		echo "== the Swift tests failed; their issues (all in .build/test-swift.log):"
		grep -a -E '✘|recorded an issue|Expectation failed|Caught error' .build/test-swift.log | cut -c1-400 | tail -40
		exit 1
	}
	grep -q ' passed after ' .build/test-swift.log

## check: the unit tests alone (no root, no cluster, no package installed; under a minute after
## a build): for everyday work
check:
	swift build --build-tests
	swift test --skip-build --skip '^HearthKitTests\.($(INTEGRATION_SUITES))/'

## test-e2e: the end-to-end tier: dist/ installed by ./install.sh on a fresh minbase Debian 12
## root (debootstrap, cached in /var/cache/hearthminds-e2e), checked from outside; as root
test-e2e: dist
	Tests/e2e/run.sh

## test-fresh: the fresh-machine tier alone: make setup and the Swift tiers in a new Debian 12
## root (debootstrap, the Swift toolchain bound in read-only), as on a machine that never ran this
test-fresh:
	Tests/fresh/run.sh

## test-fleet: the fleet tier alone: dist/, then ansible/'s role run by ansible-core (PyPI, a venv)
## on three fresh Debian 12 hosts in network namespaces, over SSH (Tests/fleet/run.sh); as root
test-fleet: dist
	Tests/fleet/run.sh

## dist: dist/hearthminds-bootstrap.tar.gz — install.sh, bootstrap/ with the stripped release
## executable (Swift runtime linked statically) and hm-<step> hard links to it, every command's
## man page (bootstrap/man/) and bash completion (bootstrap/completions/), etc/, Migrations/,
## README.md, docs/, and packages/ with the pgvector package (built once into
## .build/pgvector-deb, then reused)
dist:
	swift build -c release --static-swift-stdlib
	bin=$$(swift build -c release --static-swift-stdlib --show-bin-path)
	"$$bin/hm-pgvector-deb" --pg-version $(PGVECTOR_DEB_PG) --suite $(PGVECTOR_DEB_SUITE) \
		--source-version '$(PGVECTOR_DEB_SOURCE_VERSION)' --dsc-sha256 $(PGVECTOR_DEB_DSC_SHA256) \
		--version-suffix '$(PGVECTOR_DEB_SUFFIX)' --output $(PGVECTOR_DEB_DIR)
	deb='$(PGVECTOR_DEB_DIR)/postgresql-$(PGVECTOR_DEB_PG)-pgvector_$(PGVECTOR_DEB_SOURCE_VERSION)$(PGVECTOR_DEB_SUFFIX)'_$$(dpkg --print-architecture).deb
	stage=dist/stage/$(DIST_NAME)
	rm -rf dist/stage && mkdir -p $$stage/bootstrap/bin $$stage/packages
	install -m 0644 "$$deb" $$stage/packages/
	cp install.sh README.md $$stage/
	cp bootstrap/lib.sh bootstrap/steps $$stage/bootstrap/
	cp -r etc Migrations docs $$stage/
	install -m 0755 $$bin/hearthminds $$stage/bootstrap/bin/
	strip $$stage/bootstrap/bin/hearthminds
	commands=$$({ "$$bin/hearthminds" --list | cut -f1; "$$bin/hearthminds" --list-tools; })
	[ -n "$$commands" ] || { echo "hearthminds --list printed no commands"; exit 1; }
	# install.sh's list is the executable's (MultiCallTests holds them together too)
	diff <(grep -v '^#' bootstrap/steps | grep .) <("$$bin/hearthminds" --list) ||
		{ echo "bootstrap/steps differs from 'hearthminds --list' (CommandDefinitions.all): < is the file's"; exit 1; }
	for step in $$commands; do
		ln $$stage/bootstrap/bin/hearthminds $$stage/bootstrap/bin/hm-$$step
	done
	# Every command's man page and bash completion, generated from the command itself by its
	# hard-link name (generate-manual runs it with --experimental-dump-help). hm-migrate.1 is
	# the whole command, every subcommand on one page; hm-migrate.<subcommand>.1 each alone.
	[ -f $(ARGUMENT_PARSER_DIR)/Package.swift ] || { echo "no $(ARGUMENT_PARSER_DIR): swift package resolve"; exit 1; }
	$(GENERATE_MANUAL) >/dev/null
	manual=$$($(GENERATE_MANUAL) --show-bin-path)/generate-manual
	date=$$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
	mkdir -p $$stage/bootstrap/man $$stage/bootstrap/completions
	for name in $$commands; do
		command=$$stage/bootstrap/bin/hm-$$name
		"$$manual" "$$command" --multi-page --date "$$date" --output-directory $$stage/bootstrap/man
		"$$manual" "$$command" --date "$$date" --output-directory $$stage/bootstrap/man
		"$$command" --generate-completion-script bash >$$stage/bootstrap/completions/hm-$$name.bash
	done
	rm -f $$stage/bootstrap/man/*.help.1 # ArgumentParser's built-in help subcommand: no command of ours
	chmod 0644 $$stage/bootstrap/man/* $$stage/bootstrap/completions/*
	tar -C dist/stage -czf dist/$(DIST_NAME).tar.gz --owner=0 --group=0 $(DIST_NAME)
	rm -rf dist/stage
	ls -l dist/$(DIST_NAME).tar.gz

## bench: the benchmarks (bench/run.sh; as root, slow, not part of `make test`): a converged
## install.sh rerun, the databases and migrations steps at 1-200 AIs against psql, hm-migrate
## against Alembic, start-up and tarball size; prints a table and writes bench/RESULTS.md
bench:
	bench/run.sh

## bench-recall: recall@10 and query latency of the vector index (bench/recall.sh; as root, slow,
## not part of `make test` or `make bench`): the suite's defaults and each option against an exact
## scan, on scikit-learn's digits and clustered vectors at EMBEDDING_DIM; into bench/RESULTS.md
bench-recall:
	bench/recall.sh

## bench-backup: pgBackRest (the backup step's settings; each compress-type, process-max 1 and 2)
## against pg_basebackup -Ft of the same > 2 GiB cluster of AI memories: backup MiB/s, CPU, size,
## restore and start time, and the loss window with archive_timeout 60 s (bench/backup.sh; as
## root, slow, not part of `make test` or `make bench`; installs pgbackrest if missing); into
## bench/RESULTS.md
bench-backup:
	bench/backup.sh

## bench-vectors: the memory workload of issue 24 (bench/vectors.py; as root, about an hour on
## 2 cores, not part of `make test` or `make bench`): 500k x 768 clustered vectors, the server
## tuned by hm-postgres against PostgreSQL's defaults, IVFFlat and HNSW builds, k-NN mixed with
## inserts (pgbench), halfvec, binary quantization with re-ranking; needs python3-numpy
bench-vectors:
	swift build --product hearthminds
	bench/vectors.py

## migrate-rev m="add new table": the next revision's empty up/down files in Migrations/
## migrate-up: every database to head (db=NAME for one); migrate-down: one revision down
## (both as root: hm-migrate connects as postgres by peer authentication)
MIGRATE = swift build -c release --product hearthminds >/dev/null && "$$(swift build -c release --show-bin-path)/hearthminds" migrate
MIGRATE_DB = $${db:+--database "$$db"}

migrate-rev:
	[ -n "$${m:-}" ] || { echo 'usage: make migrate-rev m="what the revision does"'; exit 64; }
	$(MIGRATE) new --migrations Migrations "$$m"

migrate-up:
	$(MIGRATE) up --migrations Migrations $(MIGRATE_DB)

migrate-down:
	$(MIGRATE) down --steps 1 --migrations Migrations $(MIGRATE_DB)

clean:
	rm -rf .build dist
