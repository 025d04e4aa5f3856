// forward kernel k0_sub_pow_sum
// fuses %2 sub, %3 pow, %4 sum

var<private> wgt_zero: u32 = 0u;
fn f32bits(x: u32) -> f32 { return bitcast<f32>(x + wgt_zero); }
fn wgt_keep(x: f32) -> f32 { return select(x, f32bits(0x7fc00000u), wgt_isnan(x)); }
fn wgt_isnan(x: f32) -> bool { let b = bitcast<u32>(x); return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u; }
fn wgt_max(a: f32, b: f32) -> f32 { if (wgt_isnan(a)) { return a; } if (wgt_isnan(b)) { return b; } return max(a, b); }
fn wgt_min(a: f32, b: f32) -> f32 { if (wgt_isnan(a)) { return a; } if (wgt_isnan(b)) { return b; } return min(a, b); }
fn wgt_sign(a: f32) -> f32 { if (wgt_isnan(a)) { return a; } return sign(a); }
fn wgt_pow(a: f32, p: f32) -> f32 { if (p == 0.0) { return 1.0; } if (wgt_isnan(a) || wgt_isnan(p)) { return f32bits(0x7fc00000u); } if (a == 0.0) { if (p > 0.0) { return 0.0; } return f32bits(0x7f800000u); } if (a < 0.0) { return f32bits(0x7fc00000u); } if (a == f32bits(0x7f800000u)) { if (p > 0.0) { return a; } return 0.0; } return pow(a, p); }
fn wgt_tanh(a: f32) -> f32 { if (wgt_isnan(a)) { return a; } return tanh(clamp(a, -15.0, 15.0)); }
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read_write> out0: array<f32>;
struct Params { v: array<vec4<u32>, 2> }
@group(0) @binding(3) var<uniform> p: Params;
fn P(i: u32) -> u32 { return p.v[i / 4u][i % 4u]; }
var<workgroup> shv: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = wid.x + wid.y * nwg.x;
  if (o >= P(0u)) { return; }
  var ko = o;
  let base0 = 0u;
  let base1 = 0u;
  var acc: f32 = 0.0;
  var part: f32 = 0.0;
  var cnt: u32 = 0u;
  for (var r = lid; r < P(1u); r = r + 64u) {
    var rr = r;
    let q1 = rr % P(3u); rr = rr / P(3u);
    let q0 = rr;
    let x0 = f32(in0[base0 + q0 * P(4u) + q1 * P(5u)]);
    let x1 = f32(in1[base1 + q0 * P(6u) + q1 * P(7u)]);
    let pv0 = (x0 - x1); // %2 sub
    let pv1 = (pv0 * pv0); // %3 pow
    part = part + pv1;
    cnt = cnt + 1u;
    if (cnt == 64u) { acc = acc + part; part = 0.0; cnt = 0u; }
  }
  acc = acc + part;
  shv[lid] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      shv[lid] = shv[lid] + shv[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let red = shv[0];
    out0[o] = red;
  }
}