// Process-wide settings of the scanbridge executable, imported first by src/start.ts (the entry). Tests that call main()
// in their own process do not load it.
import { LEAN_HEAP, setHeapFlags } from "./util/heap.js";

// Memory (issue 15: peak RSS flat from 100 MB to 5 GB): see src/util/heap.ts. `watch` turns V8's own growth back on
// at its start; `upload` collects the old generation at V8's own growth factor.
setHeapFlags(LEAN_HEAP);
