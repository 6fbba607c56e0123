import SevenZip from "7z-wasm";
const out = [];
const sz = await SevenZip({ print: (s) => out.push(s), printErr: (s) => out.push("ERR " + s) });
sz.FS.mkdir("/in"); sz.FS.mount(sz.NODEFS, { root: "/tmp/sz" }, "/in");
sz.FS.mkdir("/out"); 
try { sz.callMain(["l", "-slt", "-ba", "/in/t.tgz"]); } catch (e) { console.log("exc", e); }
console.log(out.join("\n"));
out.length = 0;
try { sz.callMain(["l", "-slt", "-ba", "/in/d64.zip"]); } catch (e) { console.log("exc", e); }
console.log(out.join("\n"));
