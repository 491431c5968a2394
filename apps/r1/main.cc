// r1: run, inspect and create DeepSeek-V3/R1 and R1-Distill models. Flag parsing only; the
// library does the work.
#include <cstdio>

#include "commands.h"
#include "r1/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{
      "r1cpp: DeepSeek-V3/R1 and R1-Distill models in C++.\n"
      "Run `r1 <command> --help` for each command's flags and an example."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "r1cpp 0.1.0");
  r1::cli::Action action;
  r1::cli::AddInfo(app, action);
  r1::cli::AddForward(app, action);
  r1::cli::AddGenerate(app, action);
  r1::cli::AddInit(app, action);
  r1::cli::AddBench(app, action);
  r1::cli::AddTokenize(app, action);
  r1::cli::AddTokenizerTrain(app, action);
  r1::cli::AddTemplate(app, action);
  r1::cli::AddChat(app, action);
  r1::cli::AddTrain(app, action);
  r1::cli::AddPlot(app, action);
  r1::cli::AddQuantize(app, action);
  r1::cli::AddPerplexity(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 1, like every other error.
    return app.exit(e) == 0 ? 0 : 1;
  }
  try {
    return action ? action() : 0;
  } catch (const r1::Error& e) {
    std::fprintf(stderr, "r1: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "r1: error: out of memory\n");
    return 1;
  }
}
