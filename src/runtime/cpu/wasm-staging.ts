/**
 * Graph inputs that several Wasm matmuls of one compiled cpu call read (the batch x of a
 * Linear layer: its forward x @ W^T and its weight gradient dY^T @ x), copied into the Wasm
 * memory once per call instead of once per product. Each such input gets a block of the
 * engine's memory that no product's scratch overwrites (wasm-resident.ts's allocator), owned
 * by the plan and given back when the plan is collected. The copy is made again on every
 * call (the caller may have changed the tensor between calls), and only for inputs that no
 * kernel of the call writes (the caller checks), so a copy stays right for the whole call.
 */
import { envVar } from '../../platform/env.ts';
import { getEngine, type WasmGemm } from './wasm-gemm.ts';

/** WGTORCH_WASM_STAGE=0: every product copies its operands in itself */
let enabled = envVar('WGTORCH_WASM_STAGE') !== '0';

/** Turns staging on or off (benchmarks compare the two in one process). */
export function setInputStaging(on: boolean): void {
  enabled = on;
}

/** Inputs copied in by staging so far (tests read it). */
export const stagingCounters = { copies: 0 };

const release = new FinalizationRegistry<{ e: WasmGemm; blocks: number[] }>(({ e, blocks }) => blocks.forEach((at) => e.freeResident(at)));

export class StagedInputs {
  /** input id -> its block (byte address and bytes), or null where the memory had none */
  private readonly blocks = new Map<number, { at: number; bytes: number } | null>();
  private readonly owned: number[] = [];
  /** the inputs copied in during the current call */
  private readonly fresh = new Set<number>();
  private registered = false;

  constructor(readonly ids: ReadonlySet<number>) {}

  /** Starts a call: every input is copied again at its first use. */
  begin(): void {
    this.fresh.clear();
  }

  /** The byte address of input `id`'s data in the Wasm memory for this call, or -1 (not staged: the product copies it in). */
  address(id: number, data: Float32Array): number {
    if (!enabled || !this.ids.has(id)) return -1;
    const e = getEngine();
    if (!e) return -1;
    let block = this.blocks.get(id);
    if (block === undefined) {
      const at = e.allocResident(4 * data.length);
      block = at === null ? null : { at, bytes: 4 * data.length };
      this.blocks.set(id, block);
      if (block) {
        this.owned.push(block.at);
        if (!this.registered) {
          release.register(this, { e, blocks: this.owned });
          this.registered = true;
        }
      }
    }
    // a later call's tensor in a longer storage than the first one's: its products copy it in
    if (!block || 4 * data.length > block.bytes) return -1;
    if (!this.fresh.has(id)) {
      e.heap().f32.set(data, block.at / 4);
      this.fresh.add(id);
      stagingCounters.copies++;
    }
    return block.at;
  }
}
