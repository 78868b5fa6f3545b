// Three pages by path: / (setup), /interview/<id>, /report/<id>. No router library needed.
import { useEffect, useState } from "react";
import { InterviewPage } from "./pages/Interview";
import { ReportPage } from "./pages/Report";
import { SetupPage } from "./pages/Setup";

export function navigate(path: string): void {
  window.history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

export function App() {
  const [path, setPath] = useState(window.location.pathname);
  useEffect(() => {
    const onPop = () => setPath(window.location.pathname);
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const interview = path.match(/^\/interview\/([\w-]+)$/);
  if (interview) return <InterviewPage key={interview[1]} sessionId={interview[1]} />;
  const report = path.match(/^\/report\/([\w-]+)$/);
  if (report) return <ReportPage key={report[1]} sessionId={report[1]} />;
  return <SetupPage />;
}
