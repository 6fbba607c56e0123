import type { CommandContext, CommandOutput } from "./types.js";

/** Run `scanbridge pack`. */
export async function runPackCommand(ctx: CommandContext): Promise<CommandOutput> {
  return { data: { args: ctx.args }, human: ["not yet"] };
}
