/**
 * The README's table of what each change costs is the planner's own output: regenerate it with
 * `npx ts-node --transpile-only tests/e2e/executor/change-costs.ts --write` when a change to the
 * program or the planner moves it.
 */
import { changeCostTable, readmeTable } from "../e2e/executor/change-costs";

test("the README's change-cost table is what the planner plans for each kind of change", async () => {
  expect(readmeTable()).toBe(await changeCostTable());
}, 900_000);
