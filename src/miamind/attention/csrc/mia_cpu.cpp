// MIA-Mind's full-size passes on the CPU, each one read of its inputs (see miamind/attention/kernel.py).
//
// x is viewed as (N, C, P) ("ncp": contiguous) or (N, P, C) ("npc": channels_last), P the flattened
// spatial positions; the gates c, b are float32 (N, C) and s float32 (N, P), contiguous. Sums are
// accumulated in float32 over fixed tiles (independent of the thread count) and reduced in a fixed
// order, so every result is the same run to run and for any number of threads.
//
//   dual_sum(x)                       -> zsum (N, C) = sum_p x, msum (N, P) = sum_c x
//   gate(x, c, s, b)                  -> out = x * (c s + b)
//   gate_grads(g, x, c, s)            -> gc = sum_p g x s, gs = sum_c c g x, gb = sum_p g x
//   gate_input_grad(g, c, s, b, u, v) -> gx = g * (c s + b) + u[n, c] + v[n, p]
//   same_conv(m, w, bias, kh, kw)       -> the spatial gate's 1 -> 1 "same" convolution of the map m
//   same_conv_weight_grad(m, g, kh, kw) -> its dW
//
// A missing c means 1, a missing b (or u, v) 0.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace {

// float64 inputs compute in float64 (gradcheck); float32 and bfloat16 in float32.
template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

constexpr int64_t kTile = 1024;  // positions per tile: the unit of work and of partial sums

// bfloat16 is handled as its raw bits (uint16_t): branch-free conversions that the compiler vectorises.
inline float f(float v) { return v; }
inline double f(double v) { return v; }
inline float f(uint16_t v) {
  uint32_t u = static_cast<uint32_t>(v) << 16;
  float out;
  std::memcpy(&out, &u, 4);
  return out;
}
template <typename T, typename A>
inline T to(A v) {
  return static_cast<T>(v);
}
template <>
inline uint16_t to<uint16_t, float>(float v) {  // round to nearest even (NaN payloads aside)
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

struct Shape {
  int64_t n, c, p;
  bool npc;  // channels_last: C is the innermost axis
};

Shape shape_of(const at::Tensor& x) {
  TORCH_CHECK(x.dim() >= 3, "miamind kernel: x must be (N, C, *spatial), got ", x.sizes());
  int64_t p = 1;
  for (int64_t d = 2; d < x.dim(); ++d) p *= x.size(d);
  bool npc = false;
  if (!x.is_contiguous()) {
    auto fmt = x.dim() == 4 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::ChannelsLast3d;
    TORCH_CHECK((x.dim() == 4 || x.dim() == 5) && x.is_contiguous(fmt),
                "miamind kernel: x must be contiguous or channels_last");
    npc = true;
  }
  return {x.size(0), x.size(1), p, npc};
}


// A per-channel vector of sample n, or `fill` where it is missing: channels-last loops then read a
// dense array with no branch in them (the compiler vectorises them).
template <typename A>
std::vector<A> dense(const A* v, const Shape& s, int64_t n, A fill) {
  std::vector<A> out(s.c, fill);
  if (v) std::copy(v + n * s.c, v + (n + 1) * s.c, out.begin());
  return out;
}

// Channels-last loops run over blocks of B channels (B a compile-time 64, 32, 16, 8, 4, 2, 1): each block's
// per-channel partial sums stay in registers across the tile's positions and its per-position sum is
// a fixed-width reduction, instead of a loop of C iterations set up anew at every position.
template <typename Block>
inline void for_channel_blocks(int64_t c, Block&& block) {
  int64_t k0 = 0;
  for (; k0 + 64 <= c; k0 += 64) block(std::integral_constant<int64_t, 64>{}, k0);
  if (c - k0 >= 32) { block(std::integral_constant<int64_t, 32>{}, k0); k0 += 32; }
  if (c - k0 >= 16) { block(std::integral_constant<int64_t, 16>{}, k0); k0 += 16; }
  if (c - k0 >= 8) { block(std::integral_constant<int64_t, 8>{}, k0); k0 += 8; }
  if (c - k0 >= 4) { block(std::integral_constant<int64_t, 4>{}, k0); k0 += 4; }
  if (c - k0 >= 2) { block(std::integral_constant<int64_t, 2>{}, k0); k0 += 2; }
  if (c - k0 >= 1) block(std::integral_constant<int64_t, 1>{}, k0);
}

// A channel-first row's sums in kLanes independent partial sums: vector-wide steps, then a remainder
// that adds into the first lanes, then the lanes added as a tree. GCC 12 left an `omp simd` reduction
// with two sums and a store in its loop scalar (one chain of dependent adds per row); this form is
// vectorised.
constexpr int64_t kLanes = 16;
template <typename A>
struct Lanes {
  A v[kLanes] = {};
  A sum() {
    for (int64_t w = kLanes / 2; w >= 1; w /= 2)
      for (int64_t j = 0; j < w; ++j) v[j] += v[j + w];
    return v[0];
  }
};
template <typename Step>
inline void for_lanes(int64_t p0, int64_t p1, Step&& step) {
  int64_t p = p0;
  for (; p + kLanes <= p1; p += kLanes) {
#pragma omp simd
    for (int64_t j = 0; j < kLanes; ++j) step(p + j, j);
  }
  for (int64_t j = 0; p + j < p1; ++j) step(p + j, j);
}

// ------------------------------------------------------------------------------------------ forward
template <typename T, typename A = acc_t<T>>
void dual_sum_impl(const T* x, const Shape& s, A* zsum, A* msum) {
  const int64_t tiles = (s.p + kTile - 1) / kTile;
  std::vector<A> part(s.n * tiles * s.c, 0.f);  // per-tile channel sums
  at::parallel_for(0, s.n * tiles, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t n = job / tiles, t = job % tiles;
      const int64_t p0 = t * kTile, p1 = std::min(s.p, p0 + kTile);
      A* zp = part.data() + job * s.c;
      A* m = msum + n * s.p;
      if (!s.npc) {
        for (int64_t p = p0; p < p1; ++p) m[p] = 0.f;
        for (int64_t k = 0; k < s.c; ++k) {
          const T* row = x + (n * s.c + k) * s.p;
          A acc = 0.f;
#pragma omp simd reduction(+ : acc)
          for (int64_t p = p0; p < p1; ++p) {
            const A v = f(row[p]);
            acc += v;
            m[p] += v;
          }
          zp[k] = acc;
        }
      } else {
        const T* xn = x + n * s.p * s.c;
        for_channel_blocks(s.c, [&](auto width, int64_t k0) {
          constexpr int64_t B = decltype(width)::value;
          A z[B] = {};
          for (int64_t p = p0; p < p1; ++p) {
            const T* vec = xn + p * s.c + k0;
            A acc = 0.f;
#pragma omp simd reduction(+ : acc)
            for (int64_t k = 0; k < B; ++k) {
              const A v = f(vec[k]);
              acc += v;
              z[k] += v;
            }
            m[p] = k0 == 0 ? acc : m[p] + acc;
          }
          for (int64_t k = 0; k < B; ++k) zp[k0 + k] = z[k];
        });
      }
    }
  });
  for (int64_t n = 0; n < s.n; ++n) {  // fixed order: tile 0, 1, ...
    A* z = zsum + n * s.c;
    for (int64_t k = 0; k < s.c; ++k) z[k] = 0.f;
    for (int64_t t = 0; t < tiles; ++t) {
      const A* zp = part.data() + (n * tiles + t) * s.c;
      for (int64_t k = 0; k < s.c; ++k) z[k] += zp[k];
    }
  }
}

template <typename T, typename A = acc_t<T>>
void gate_impl(const T* x, const Shape& s, const A* c, const A* sg, const A* b, T* out) {
  const int64_t tiles = (s.p + kTile - 1) / kTile;
  at::parallel_for(0, s.n * tiles, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t n = job / tiles, t = job % tiles;
      const int64_t p0 = t * kTile, p1 = std::min(s.p, p0 + kTile);
      const A* sn = sg + n * s.p;
      const A* cn = c ? c + n * s.c : nullptr;
      const A* bn = b ? b + n * s.c : nullptr;
      if (!s.npc) {
        for (int64_t k = 0; k < s.c; ++k) {
          const int64_t off = (n * s.c + k) * s.p;
          const A ck = cn ? cn[k] : 1.f, bk = bn ? bn[k] : 0.f;
#pragma omp simd
          for (int64_t p = p0; p < p1; ++p) out[off + p] = to<T>(f(x[off + p]) * (ck * sn[p] + bk));
        }
      } else {
        const std::vector<A> cv = dense<A>(c, s, n, 1), bv = dense<A>(b, s, n, 0);
        const A* cd = cv.data();
        const A* bd = bv.data();
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t off = (n * s.p + p) * s.c;
          const A sp = sn[p];
#pragma omp simd
          for (int64_t k = 0; k < s.c; ++k) out[off + k] = to<T>(f(x[off + k]) * (cd[k] * sp + bd[k]));
        }
      }
    }
  });
}


// ------------------------------------------------------------------------------------------ backward
template <typename T, typename G, typename A = acc_t<T>>
void gate_grads_impl(const G* g, const T* x, const Shape& s, const A* c, const A* sg, A* gc,
                     A* gs, A* gb) {
  const int64_t tiles = (s.p + kTile - 1) / kTile;
  std::vector<A> pc(s.n * tiles * s.c, 0.f), pb(s.n * tiles * s.c, 0.f);
  at::parallel_for(0, s.n * tiles, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t n = job / tiles, t = job % tiles;
      const int64_t p0 = t * kTile, p1 = std::min(s.p, p0 + kTile);
      const A* sn = sg + n * s.p;
      const A* cn = c ? c + n * s.c : nullptr;
      A* gsn = gs + n * s.p;
      A* pcj = pc.data() + job * s.c;
      A* pbj = pb.data() + job * s.c;
      if (!s.npc) {
        for (int64_t p = p0; p < p1; ++p) gsn[p] = 0.f;
        for (int64_t k = 0; k < s.c; ++k) {
          const int64_t off = (n * s.c + k) * s.p;
          const A ck = cn ? cn[k] : 1.f;
          Lanes<A> zc, zb;
          for_lanes(p0, p1, [&](int64_t p, int64_t j) {
            const A tv = f(g[off + p]) * f(x[off + p]);
            zc.v[j] += tv * sn[p];
            zb.v[j] += tv;
            gsn[p] += ck * tv;
          });
          pcj[k] = zc.sum();
          pbj[k] = zb.sum();
        }
      } else {
        const std::vector<A> cv = dense<A>(c, s, n, 1);
        const int64_t base = n * s.p * s.c;
        for_channel_blocks(s.c, [&](auto width, int64_t k0) {
          constexpr int64_t B = decltype(width)::value;
          A zc[B] = {}, zb[B] = {}, ck[B];
          for (int64_t k = 0; k < B; ++k) ck[k] = cv[k0 + k];
          for (int64_t p = p0; p < p1; ++p) {
            const int64_t off = base + p * s.c + k0;
            const A sp = sn[p];
            A acc = 0.f;
#pragma omp simd reduction(+ : acc)
            for (int64_t k = 0; k < B; ++k) {
              const A tv = f(g[off + k]) * f(x[off + k]);
              zc[k] += tv * sp;
              zb[k] += tv;
              acc += ck[k] * tv;
            }
            gsn[p] = k0 == 0 ? acc : gsn[p] + acc;
          }
          for (int64_t k = 0; k < B; ++k) {
            pcj[k0 + k] = zc[k];
            pbj[k0 + k] = zb[k];
          }
        });
      }
    }
  });
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t k = 0; k < s.c; ++k) {
      A a = 0.f, bsum = 0.f;
      for (int64_t t = 0; t < tiles; ++t) {
        a += pc[(n * tiles + t) * s.c + k];
        bsum += pb[(n * tiles + t) * s.c + k];
      }
      gc[n * s.c + k] = a;
      gb[n * s.c + k] = bsum;
    }
  }
}

template <typename T, typename G, typename A = acc_t<T>>
void input_grad_impl(const G* g, const Shape& s, const A* c, const A* sg, const A* b, const A* u,
                     const A* v, T* gx) {
  const int64_t tiles = (s.p + kTile - 1) / kTile;
  at::parallel_for(0, s.n * tiles, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t n = job / tiles, t = job % tiles;
      const int64_t p0 = t * kTile, p1 = std::min(s.p, p0 + kTile);
      const A* sn = sg + n * s.p;
      const A* vn = v ? v + n * s.p : nullptr;
      if (!s.npc) {
        for (int64_t k = 0; k < s.c; ++k) {
          const int64_t off = (n * s.c + k) * s.p;
          const A ck = c ? c[n * s.c + k] : 1.f, bk = b ? b[n * s.c + k] : 0.f;
          const A uk = u ? u[n * s.c + k] : 0.f;
          if (vn) {
#pragma omp simd
            for (int64_t p = p0; p < p1; ++p)
              gx[off + p] = to<T>(f(g[off + p]) * (ck * sn[p] + bk) + uk + vn[p]);
          } else {
#pragma omp simd
            for (int64_t p = p0; p < p1; ++p) gx[off + p] = to<T>(f(g[off + p]) * (ck * sn[p] + bk) + uk);
          }
        }
      } else {
        const std::vector<A> cv = dense<A>(c, s, n, 1), bv = dense<A>(b, s, n, 0), uv = dense<A>(u, s, n, 0);
        const A* cd = cv.data();
        const A* bd = bv.data();
        const A* ud = uv.data();
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t off = (n * s.p + p) * s.c;
          const A sp = sn[p], vp = vn ? vn[p] : 0.f;
#pragma omp simd
          for (int64_t k = 0; k < s.c; ++k) gx[off + k] = to<T>(f(g[off + k]) * (cd[k] * sp + bd[k]) + ud[k] + vp);
        }
      }
    }
  });
}

#define MIA_DISPATCH(dtype, NAME, ...)                                                                   \
  [&] {                                                                                                    \
    if ((dtype) == at::kFloat) {                                                                           \
      using NAME = float;                                                                                  \
      return __VA_ARGS__();                                                                                \
    }                                                                                                      \
    if ((dtype) == at::kDouble) {                                                                          \
      using NAME = double;                                                                                 \
      return __VA_ARGS__();                                                                                \
    }                                                                                                      \
    TORCH_CHECK((dtype) == at::kBFloat16, "miamind kernel: float32, float64 or bfloat16, got ", dtype); \
    using NAME = uint16_t;                                                                                 \
    return __VA_ARGS__();                                                                                  \
  }()

// The gates' and the sums' dtype for an x of this dtype.
at::ScalarType acc_dtype(const at::Tensor& x) { return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

template <typename A>
const A* ptr_or_null(const c10::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? t->data_ptr<A>() : nullptr;
}

void check_gate(const at::Tensor& x, const c10::optional<at::Tensor>& t, int64_t len, const char* what) {
  if (!t.has_value() || !t->defined()) return;
  TORCH_CHECK(t->scalar_type() == acc_dtype(x) && t->is_contiguous() && t->numel() == x.size(0) * len,
              "miamind kernel: ", what, " must be a contiguous ", acc_dtype(x), " tensor of ", x.size(0) * len,
              " numbers");
}

void check_grad(const at::Tensor& g, const at::Tensor& x) {
  TORCH_CHECK(g.sizes() == x.sizes() && g.strides() == x.strides(), "miamind kernel: grad laid out unlike x");
  TORCH_CHECK(g.scalar_type() == x.scalar_type(), "miamind kernel: grad dtype ", g.scalar_type(), " is not x's");
}

}  // namespace

std::vector<at::Tensor> dual_sum(const at::Tensor& x) {
  const Shape s = shape_of(x);
  auto opts = x.options().dtype(acc_dtype(x));
  at::Tensor zsum = at::zeros({s.n, s.c}, opts), msum = at::zeros({s.n, s.p}, opts);
  if (x.numel() == 0) return {zsum, msum};
  MIA_DISPATCH(x.scalar_type(), T, [&] {
    using A = acc_t<T>;
    dual_sum_impl<T>(static_cast<const T*>(x.data_ptr()), s, zsum.data_ptr<A>(), msum.data_ptr<A>());
  });
  return {zsum, msum};
}

at::Tensor gate(const at::Tensor& x, const c10::optional<at::Tensor>& c, const at::Tensor& sg,
                const c10::optional<at::Tensor>& b) {
  const Shape s = shape_of(x);
  check_gate(x, sg, s.p, "s");
  check_gate(x, c, s.c, "c");
  check_gate(x, b, s.c, "b");
  at::Tensor out = at::empty_like(x);  // keeps x's memory format
  if (x.numel() == 0) return out;
  MIA_DISPATCH(x.scalar_type(), T, [&] {
    using A = acc_t<T>;
    gate_impl<T>(static_cast<const T*>(x.data_ptr()), s, ptr_or_null<A>(c), sg.data_ptr<A>(), ptr_or_null<A>(b),
                 static_cast<T*>(out.data_ptr()));
  });
  return out;
}

std::vector<at::Tensor> gate_grads(const at::Tensor& g, const at::Tensor& x, const c10::optional<at::Tensor>& c,
                                   const at::Tensor& sg) {
  const Shape s = shape_of(x);
  check_grad(g, x);
  check_gate(x, sg, s.p, "s");
  check_gate(x, c, s.c, "c");
  auto opts = x.options().dtype(acc_dtype(x));
  at::Tensor gc = at::zeros({s.n, s.c}, opts), gb = at::zeros({s.n, s.c}, opts), gs = at::zeros({s.n, s.p}, opts);
  if (x.numel() == 0) return {gc, gs, gb};
  MIA_DISPATCH(x.scalar_type(), T, [&] {
    using A = acc_t<T>;
    gate_grads_impl<T, T>(static_cast<const T*>(g.data_ptr()), static_cast<const T*>(x.data_ptr()), s,
                          ptr_or_null<A>(c), sg.data_ptr<A>(), gc.data_ptr<A>(), gs.data_ptr<A>(), gb.data_ptr<A>());
  });
  return {gc, gs, gb};
}

at::Tensor gate_input_grad(const at::Tensor& g, const at::Tensor& x, const c10::optional<at::Tensor>& c,
                           const at::Tensor& sg, const c10::optional<at::Tensor>& b,
                           const c10::optional<at::Tensor>& u, const c10::optional<at::Tensor>& v) {
  const Shape s = shape_of(x);
  check_grad(g, x);
  check_gate(x, sg, s.p, "s");
  check_gate(x, c, s.c, "c");
  check_gate(x, b, s.c, "b");
  check_gate(x, u, s.c, "u");
  check_gate(x, v, s.p, "v");
  at::Tensor gx = at::empty_like(x);
  if (x.numel() == 0) return gx;
  MIA_DISPATCH(x.scalar_type(), T, [&] {
    using A = acc_t<T>;
    input_grad_impl<T, T>(static_cast<const T*>(g.data_ptr()), s, ptr_or_null<A>(c), sg.data_ptr<A>(),
                          ptr_or_null<A>(b), ptr_or_null<A>(u), ptr_or_null<A>(v), static_cast<T*>(gx.data_ptr()));
  });
  return gx;
}

namespace {

// The spatial gate's "same" 1 -> 1 convolution (stride 1, odd kernel, zero padding k // 2), 1-D or 2-D,
// on maps m (N, 1, [H,] W). Each sample's map is first copied into a float32 buffer of rows padded
// with zeros: kw / 2 on the left, up to a multiple of kBlock plus kw / 2 on the right, so that every
// inner loop runs over whole blocks of kBlock positions without bounds (rows above and below the map
// are skipped). A block is four vector registers of float32: four independent chains of FMAs.
constexpr int64_t kBlock = 64;

inline int64_t round_up(int64_t v) { return (v + kBlock - 1) / kBlock * kBlock; }

template <typename T, typename A>
void padded_rows(const T* m, int64_t h, int64_t w, int64_t left, int64_t wp, std::vector<A>& buf) {
  buf.assign(h * wp, A(0));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) buf[y * wp + left + x] = f(m[y * w + x]);
}

// out[n, y, x] = bias + sum_{i, j} wt[i, j] m[n, y + i - kh / 2, x + j - kw / 2]: per block of kBlock
// outputs, the taps in their fixed order into accumulators kept in registers; rounded once to T.
template <typename T, typename A = acc_t<T>>
void same_conv_impl(const T* mp, const A* wt, A bias, int64_t n, int64_t h, int64_t w, int64_t kh, int64_t kw,
                    T* out) {
  const int64_t ph = kh / 2, pw = kw / 2, wr = round_up(w), wp = wr + 2 * pw;
  at::parallel_for(0, n, 1, [&](int64_t lo, int64_t hi) {
    std::vector<A> src, row(wr);
    for (int64_t sn = lo; sn < hi; ++sn) {
      padded_rows(mp + sn * h * w, h, w, pw, wp, src);
      for (int64_t y = 0; y < h; ++y) {
        for (int64_t xb = 0; xb < wr; xb += kBlock) {
          A acc[kBlock];
          for (int64_t l = 0; l < kBlock; ++l) acc[l] = bias;
          for (int64_t i = 0; i < kh; ++i) {
            const int64_t yy = y + i - ph;
            if (yy < 0 || yy >= h) continue;
            const A* r = src.data() + yy * wp + xb;
            for (int64_t j = 0; j < kw; ++j) {
              const A wv = wt[i * kw + j];
#pragma omp simd
              for (int64_t l = 0; l < kBlock; ++l) acc[l] += wv * r[j + l];
            }
          }
          for (int64_t l = 0; l < kBlock; ++l) row[xb + l] = acc[l];
        }
        T* o = out + (sn * h + y) * w;
        for (int64_t x = 0; x < w; ++x) o[x] = to<T>(row[x]);
      }
    }
  });
}

// dL/dW of the same convolution: dw[i, j] = sum_{n, y, x} grad[n, y, x] m[n, y + i - kh / 2, x + j - kw / 2]
// (zero outside). Per (sample, tap) one sum in kBlock partial sums (grad's rows padded with zeros to
// whole blocks), over the rows in order; the rows are taken kRows at a time for all taps, so that they
// are read from L1. The partial sums are then added as a tree, the samples in order.
constexpr int64_t kRows = 8;

template <typename T, typename A = acc_t<T>>
void conv_weight_grad_impl(const T* mp, const T* gp, int64_t n, int64_t h, int64_t w, int64_t kh, int64_t kw,
                           A* out) {
  const int64_t taps = kh * kw, ph = kh / 2, pw = kw / 2, wr = round_up(w), wp = wr + 2 * pw;
  std::vector<A> part(n * taps, 0);
  at::parallel_for(0, n, 1, [&](int64_t lo, int64_t hi) {
    std::vector<A> src, g, lanes(taps * kBlock);
    for (int64_t sn = lo; sn < hi; ++sn) {
      padded_rows(mp + sn * h * w, h, w, pw, wp, src);
      padded_rows(gp + sn * h * w, h, w, 0, wr, g);
      std::fill(lanes.begin(), lanes.end(), A(0));
      for (int64_t t0 = 0; t0 < h; t0 += kRows) {
        const int64_t t1 = std::min(h, t0 + kRows);
        for (int64_t i = 0; i < kh; ++i) {
          // rows y of this tile whose source row y + i - ph lies in the map
          const int64_t y0 = std::max(t0, ph - i), y1 = std::min(t1, h + ph - i);
          if (y0 >= y1) continue;
          for (int64_t j = 0; j < kw; ++j) {
            A* lane = lanes.data() + (i * kw + j) * kBlock;
            A acc[kBlock];
            for (int64_t l = 0; l < kBlock; ++l) acc[l] = lane[l];
            for (int64_t y = y0; y < y1; ++y) {
              const A* gr = g.data() + y * wr;
              const A* r = src.data() + (y + i - ph) * wp + j;
              for (int64_t xb = 0; xb < wr; xb += kBlock) {
#pragma omp simd
                for (int64_t l = 0; l < kBlock; ++l) acc[l] += gr[xb + l] * r[xb + l];
              }
            }
            for (int64_t l = 0; l < kBlock; ++l) lane[l] = acc[l];
          }
        }
      }
      for (int64_t t = 0; t < taps; ++t) {
        A* acc = lanes.data() + t * kBlock;
        for (int64_t width = kBlock / 2; width >= 1; width /= 2)
          for (int64_t l = 0; l < width; ++l) acc[l] += acc[l + width];
        part[sn * taps + t] = acc[0];
      }
    }
  });
  for (int64_t sn = 0; sn < n; ++sn)
    for (int64_t t = 0; t < taps; ++t) out[t] += part[sn * taps + t];
}

void check_map(const at::Tensor& m, int64_t kh, int64_t kw) {
  TORCH_CHECK((m.dim() == 3 || m.dim() == 4) && m.size(1) == 1 && m.is_contiguous(),
              "miamind kernel: the map must be a contiguous (N, 1, [H,] W), got ", m.sizes());
  TORCH_CHECK(kh % 2 == 1 && kw % 2 == 1 && (m.dim() == 4 || kh == 1), "miamind kernel: odd kernel sizes");
}

}  // namespace

at::Tensor same_conv(const at::Tensor& m, const at::Tensor& weight, double bias, int64_t kh, int64_t kw) {
  check_map(m, kh, kw);
  TORCH_CHECK(weight.scalar_type() == acc_dtype(m) && weight.is_contiguous() && weight.numel() == kh * kw,
              "miamind kernel: weight must be a contiguous ", acc_dtype(m), " tensor of ", kh * kw, " numbers");
  at::Tensor out = at::empty_like(m);
  const int64_t n = m.size(0), h = m.dim() == 4 ? m.size(2) : 1, w = m.size(-1);
  if (m.numel() == 0) return out;
  MIA_DISPATCH(m.scalar_type(), T, [&] {
    using A = acc_t<T>;
    same_conv_impl<T>(static_cast<const T*>(m.data_ptr()), weight.data_ptr<A>(), static_cast<A>(bias), n, h, w, kh,
                      kw, static_cast<T*>(out.data_ptr()));
  });
  return out;
}

at::Tensor same_conv_weight_grad(const at::Tensor& m, const at::Tensor& grad, int64_t kh, int64_t kw) {
  check_map(m, kh, kw);
  TORCH_CHECK(grad.is_contiguous() && grad.sizes() == m.sizes() && grad.scalar_type() == m.scalar_type(),
              "miamind kernel: grad must be a contiguous tensor of the map's shape and dtype");
  const int64_t n = m.size(0), h = m.dim() == 4 ? m.size(2) : 1, w = m.size(-1);
  at::Tensor out = at::zeros({kh, kw}, m.options().dtype(acc_dtype(m)));
  MIA_DISPATCH(m.scalar_type(), T, [&] {
    using A = acc_t<T>;
    conv_weight_grad_impl<T>(static_cast<const T*>(m.data_ptr()), static_cast<const T*>(grad.data_ptr()), n, h, w,
                             kh, kw, out.data_ptr<A>());
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("dual_sum", &dual_sum, "(sum over space (N, C), sum over channels (N, P)) in one read of x");
  m.def("gate", &gate, "x * (c s + b) in one pass");
  m.def("gate_grads", &gate_grads, "(sum_p g x s, sum_c c g x, sum_p g x) in one read of g and x");
  m.def("gate_input_grad", &gate_input_grad, "g * (c s + b) + u + v in one pass");
  m.def("same_conv", &same_conv, "the spatial gate's same 1 -> 1 convolution (its input gradient: the kernel flipped)");
  m.def("same_conv_weight_grad", &same_conv_weight_grad, "dW of the spatial gate's same 1 -> 1 convolution");
}
