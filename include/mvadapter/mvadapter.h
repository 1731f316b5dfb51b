#pragma once
// Everything a program using mvadapter needs, in one include (docs/api.md): run configs built in
// code or read from YAML, the Retriever, training and evaluation. The per-layer headers under
// mvadapter/ stay available for finer control.
#include "mvadapter/api/retriever.h"
#include "mvadapter/api/training.h"
#include "mvadapter/config/run_config.h"
#include "mvadapter/config/run_setup.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/core/version.h"
#include "mvadapter/eval/embedding_index.h"
#include "mvadapter/eval/evaluator.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "mvadapter/model/retrieval_model.h"
#include "mvadapter/train/optimizer.h"
#include "mvadapter/train/trainer.h"
