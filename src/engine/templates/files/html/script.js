document.getElementById("note").textContent += " Scripts run.";
