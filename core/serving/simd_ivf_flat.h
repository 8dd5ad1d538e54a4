// FAISS's IVF-Flat inner-product index with the list scan and the coarse quantizer on the run-time
// chosen SIMD kernel (core/serving/simd_inner_product.h).
//
// Why subclasses and not a fork: FAISS's extension points do the job. IndexIVF::search calls
// `quantizer->search` (here SimdIndexFlatIP: nlist inner products per query) and then scans the
// probed lists through `get_InvertedListScanner` (here a scanner whose distances come from the
// kernel); everything else — the heaps, nprobe and SearchParametersIVF, store_pairs, add, train,
// the inverted lists — is FAISS's own code. Debian's libfaiss runs both steps on a scalar loop.
//
// Not serialisable: faiss::write_index does not know these classes (optower never writes an index;
// it rebuilds from the catalog's embeddings).
#ifndef OPTOWER_CORE_SERVING_SIMD_IVF_FLAT_H_
#define OPTOWER_CORE_SERVING_SIMD_IVF_FLAT_H_

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>

#include "core/serving/simd_inner_product.h"

namespace optower {

// IndexFlatIP whose search of a few queries (fewer than faiss::distance_compute_blas_threshold, as
// IVF's coarse quantizer sees per request) uses the kernel; larger batches, and searches with an
// ID selector, stay on FAISS's BLAS path. Results as IndexFlatIP: per query the k largest inner
// products in decreasing order, ties broken as FAISS's heap does, missing slots -1.
struct SimdIndexFlatIP : faiss::IndexFlatIP {
  explicit SimdIndexFlatIP(idx_t d, const InnerProductFns& fns = BestInnerProductKernel())
      : faiss::IndexFlatIP(d), fns(&fns) {}

  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;

  const InnerProductFns* fns;
};

// IndexIVFFlat with METRIC_INNER_PRODUCT whose scanner computes distances with the kernel. Searches
// with an ID selector use FAISS's own scanner. Pair it with a SimdIndexFlatIP quantizer for the
// coarse step too.
struct SimdIndexIVFFlat : faiss::IndexIVFFlat {
  SimdIndexIVFFlat(faiss::Index* quantizer, size_t d, size_t nlist,
                   const InnerProductFns& fns = BestInnerProductKernel())
      : faiss::IndexIVFFlat(quantizer, d, nlist, faiss::METRIC_INNER_PRODUCT), fns(&fns) {}

  faiss::InvertedListScanner* get_InvertedListScanner(
      bool store_pairs, const faiss::IDSelector* sel) const override;

  const InnerProductFns* fns;
};

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_SIMD_IVF_FLAT_H_
