import { InterruptedError } from "../errors.js";

/** Questions asked of a person at a terminal; injectable so tests can answer without a TTY. */
export interface Prompter {
  input(message: string, opts?: { default?: string; validate?: (v: string) => true | string }): Promise<string>;
  password(message: string): Promise<string>;
  confirm(message: string, defaultValue?: boolean): Promise<boolean>;
  select<T extends string>(message: string, choices: ReadonlyArray<{ name: string; value: T }>, defaultValue?: T): Promise<T>;
}

/** The inquirer-backed prompter (loaded lazily: importing this module has no side effects). */
export function createInquirerPrompter(output: NodeJS.WritableStream = process.stderr): Prompter {
  const load = async () => (await import("inquirer")).default;
  const ask = async <T>(question: Record<string, unknown>): Promise<T> => {
    const inquirer = await load();
    const prompt = inquirer.createPromptModule({ output: output as NodeJS.WriteStream });
    try {
      const answers = (await prompt([{ name: "v", ...question } as never])) as { v: T };
      return answers.v;
    } catch (err) {
      // Ctrl-C (or Ctrl-D) at a prompt: @inquirer/core rejects with ExitPromptError; that is the user leaving, not a bug.
      if (isPromptExit(err)) throw new InterruptedError(undefined, { cause: err });
      throw err;
    }
  };
  return {
    input: (message, opts) => ask<string>({ type: "input", message, default: opts?.default, validate: opts?.validate }),
    password: (message) => ask<string>({ type: "password", message, mask: "*" }),
    confirm: (message, defaultValue = false) => ask<boolean>({ type: "confirm", message, default: defaultValue }),
    select: (message, choices, defaultValue) => ask({ type: "list", message, choices, default: defaultValue }),
  };
}

function isPromptExit(err: unknown): boolean {
  const name = (err as { name?: string } | undefined)?.name;
  return name === "ExitPromptError" || name === "AbortPromptError";
}

/** A prompter for non-interactive runs: any question is a bug, so it throws. */
export function createScriptedPrompter(answers: Array<string | boolean> = []): Prompter {
  const next = (message: string) => {
    if (answers.length === 0) throw new Error(`Unexpected prompt: ${message}`);
    return answers.shift()!;
  };
  return {
    input: async (m) => String(next(m)),
    password: async (m) => String(next(m)),
    confirm: async (m) => Boolean(next(m)),
    select: async (m) => next(m) as never,
  };
}
