// The overview page. (Filled in by its own change.)
import { start } from "./session.js";

start(() => {});
