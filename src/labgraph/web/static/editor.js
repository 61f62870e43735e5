// Progressive enhancement of the SPARQL query page; the page works the same without it.
// Ctrl+Enter (or Cmd+Enter) in the editor runs the query.
document.addEventListener("DOMContentLoaded", function () {
  var editor = document.getElementById("query");
  if (!editor || !editor.form) {
    return;
  }
  editor.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      editor.form.requestSubmit ? editor.form.requestSubmit() : editor.form.submit();
    }
  });
});
