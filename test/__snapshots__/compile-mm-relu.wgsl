// forward kernel k0_mmNT_add_relu
// fuses %3 mm, %5 add, %6 relu
// from 0, 1

// matmul NT r4x8-8x8-vec4: 4x8 outputs per invocation, workgroup 8x8
struct Params { M: u32, N: u32, K: u32, strideA: u32, strideB: u32, strideC: u32, zero: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> ein0: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;
var<private> wgt_zero: u32 = 0u;
fn f32bits(x: u32) -> f32 { return bitcast<f32>(x + wgt_zero); }
fn wgt_keep(x: f32) -> f32 { return select(x, f32bits(0x7fc00000u), wgt_isnan(x)); }
fn wgt_isnan(x: f32) -> bool { let b = bitcast<u32>(x); return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u; }
fn wgt_max(a: f32, b: f32) -> f32 { if (wgt_isnan(a)) { return a; } if (wgt_isnan(b)) { return b; } return max(a, b); }
fn wgt_min(a: f32, b: f32) -> f32 { if (wgt_isnan(a)) { return a; } if (wgt_isnan(b)) { return b; } return min(a, b); }
fn wgt_sign(a: f32) -> f32 { if (wgt_isnan(a)) { return a; } return sign(a); }
fn wgt_pow(a: f32, p: f32) -> f32 { if (p == 0.0) { return 1.0; } if (wgt_isnan(a) || wgt_isnan(p)) { return f32bits(0x7fc00000u); } if (a == 0.0) { if (p > 0.0) { return 0.0; } return f32bits(0x7f800000u); } if (a < 0.0) { return f32bits(0x7fc00000u); } if (a == f32bits(0x7f800000u)) { if (p > 0.0) { return a; } return 0.0; } return pow(a, p); }
fn wgt_tanh(a: f32) -> f32 { if (wgt_isnan(a)) { return a; } return tanh(clamp(a, -15.0, 15.0)); }
fn epilogue4(acc: vec4<f32>, row: u32, col: u32) {
  let v0 = ein0[(row * 0u + col) / 4u];
  let ex0 = (acc.x + f32(v0[0])); // %5 add (0)
  let ex1 = wgt_max(ex0, 0.0); // %6 relu (1)
  let ey0 = (acc.y + f32(v0[1])); // %5 add (0)
  let ey1 = wgt_max(ey0, 0.0); // %6 relu (1)
  let ez0 = (acc.z + f32(v0[2])); // %5 add (0)
  let ez1 = wgt_max(ez0, 0.0); // %6 relu (1)
  let ew0 = (acc.w + f32(v0[3])); // %5 add (0)
  let ew1 = wgt_max(ew0, 0.0); // %6 relu (1)
  C[(row * 100u + col) / 4u] = vec4<f32>(ex1, ey1, ez1, ew1);
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 8u;
  if (row0 >= p.M || col0 >= p.N) { return; }
  let offA = gid.z * p.strideA;
  let offB = gid.z * p.strideB;
  let offC = gid.z * p.strideC;
  let r0 = min(row0 + 0u, p.M - 1u);
  let r1 = min(row0 + 1u, p.M - 1u);
  let r2 = min(row0 + 2u, p.M - 1u);
  let r3 = min(row0 + 3u, p.M - 1u);
  let c0 = min(col0 + 0u, p.N - 4u);
  let c1 = min(col0 + 4u, p.N - 4u);
  var acc0_0 = vec4<f32>(0.0);
  var acc0_1 = vec4<f32>(0.0);
  var acc1_0 = vec4<f32>(0.0);
  var acc1_1 = vec4<f32>(0.0);
  var acc2_0 = vec4<f32>(0.0);
  var acc2_1 = vec4<f32>(0.0);
  var acc3_0 = vec4<f32>(0.0);
  var acc3_1 = vec4<f32>(0.0);
  for (var k = 0u; k < p.K; k = k + 4u) {
    let a0 = A[(offA + (r0) * p.K + k) / 4u];
    let a1 = A[(offA + (r1) * p.K + k) / 4u];
    let a2 = A[(offA + (r2) * p.K + k) / 4u];
    let a3 = A[(offA + (r3) * p.K + k) / 4u];
    let bt0_0 = B[(offB + (c0 + 0u) * p.K + k) / 4u];
    let bt0_1 = B[(offB + (c0 + 1u) * p.K + k) / 4u];
    let bt0_2 = B[(offB + (c0 + 2u) * p.K + k) / 4u];
    let bt0_3 = B[(offB + (c0 + 3u) * p.K + k) / 4u];
    let bt1_0 = B[(offB + (c1 + 0u) * p.K + k) / 4u];
    let bt1_1 = B[(offB + (c1 + 1u) * p.K + k) / 4u];
    let bt1_2 = B[(offB + (c1 + 2u) * p.K + k) / 4u];
    let bt1_3 = B[(offB + (c1 + 3u) * p.K + k) / 4u];
    let b0_0 = vec4<f32>(bt0_0.x, bt0_1.x, bt0_2.x, bt0_3.x);
    let b0_1 = vec4<f32>(bt1_0.x, bt1_1.x, bt1_2.x, bt1_3.x);
    let b1_0 = vec4<f32>(bt0_0.y, bt0_1.y, bt0_2.y, bt0_3.y);
    let b1_1 = vec4<f32>(bt1_0.y, bt1_1.y, bt1_2.y, bt1_3.y);
    let b2_0 = vec4<f32>(bt0_0.z, bt0_1.z, bt0_2.z, bt0_3.z);
    let b2_1 = vec4<f32>(bt1_0.z, bt1_1.z, bt1_2.z, bt1_3.z);
    let b3_0 = vec4<f32>(bt0_0.w, bt0_1.w, bt0_2.w, bt0_3.w);
    let b3_1 = vec4<f32>(bt1_0.w, bt1_1.w, bt1_2.w, bt1_3.w);
    acc0_0 = fma(vec4<f32>(a0.w), b3_0, fma(vec4<f32>(a0.z), b2_0, fma(vec4<f32>(a0.y), b1_0, fma(vec4<f32>(a0.x), b0_0, acc0_0))));
    acc0_1 = fma(vec4<f32>(a0.w), b3_1, fma(vec4<f32>(a0.z), b2_1, fma(vec4<f32>(a0.y), b1_1, fma(vec4<f32>(a0.x), b0_1, acc0_1))));
    acc1_0 = fma(vec4<f32>(a1.w), b3_0, fma(vec4<f32>(a1.z), b2_0, fma(vec4<f32>(a1.y), b1_0, fma(vec4<f32>(a1.x), b0_0, acc1_0))));
    acc1_1 = fma(vec4<f32>(a1.w), b3_1, fma(vec4<f32>(a1.z), b2_1, fma(vec4<f32>(a1.y), b1_1, fma(vec4<f32>(a1.x), b0_1, acc1_1))));
    acc2_0 = fma(vec4<f32>(a2.w), b3_0, fma(vec4<f32>(a2.z), b2_0, fma(vec4<f32>(a2.y), b1_0, fma(vec4<f32>(a2.x), b0_0, acc2_0))));
    acc2_1 = fma(vec4<f32>(a2.w), b3_1, fma(vec4<f32>(a2.z), b2_1, fma(vec4<f32>(a2.y), b1_1, fma(vec4<f32>(a2.x), b0_1, acc2_1))));
    acc3_0 = fma(vec4<f32>(a3.w), b3_0, fma(vec4<f32>(a3.z), b2_0, fma(vec4<f32>(a3.y), b1_0, fma(vec4<f32>(a3.x), b0_0, acc3_0))));
    acc3_1 = fma(vec4<f32>(a3.w), b3_1, fma(vec4<f32>(a3.z), b2_1, fma(vec4<f32>(a3.y), b1_1, fma(vec4<f32>(a3.x), b0_1, acc3_1))));
  }
  var accv = array<vec4<f32>, 8>(acc0_0, acc0_1, acc1_0, acc1_1, acc2_0, acc2_1, acc3_0, acc3_1);
  for (var e = 0u; e < max(p.zero, 8u); e = e + 1u) {
    let row = row0 + e / 2u;
    let col = col0 + (e % 2u) * 4u;
    if (row < p.M && col < p.N) { epilogue4(accv[e], row, col); }
  }
}
