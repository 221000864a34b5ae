// MathJax reads only the math that pymdownx.arithmatex marked; the script itself is
// bundled with the site (assets/mathjax/tex-chtml.js), never loaded from a CDN.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};
