// Progress reports of the learners (CLI progress bar, the trainer's WatchTraining stream).
#ifndef OPTOWER_CORE_BASE_TRAIN_PROGRESS_H_
#define OPTOWER_CORE_BASE_TRAIN_PROGRESS_H_

#include <functional>
#include <string>

namespace optower {

struct TrainProgress {
  std::string phase;       // "reward_model" | "policy"
  int epoch = 0;           // 1-based, finished epochs
  int epochs = 0;          // planned
  double loss = 0.0;       // mean training loss of the epoch
  double validation = 0.0; // reward model: held-out loss; policy: held-out DR value estimate
  bool improved = false;   // validation improved on the best so far (the kept checkpoint)
};

// Called from the training thread after every epoch; must be cheap and not throw.
using ProgressCallback = std::function<void(const TrainProgress&)>;

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_TRAIN_PROGRESS_H_
