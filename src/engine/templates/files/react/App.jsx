import { useState } from "react";

export default function App() {
  const [count, setCount] = useState(0);
  return (
    <main style={{{{ fontFamily: "sans-serif", margin: "2rem" }}>
      <h1>{{name}}</h1>
      <button onClick={() => setCount((c) => c + 1)}>clicked {count} times</button>
    </main>
  );
}
