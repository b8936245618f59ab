// The LTI entry page: at the top level, go straight on; inside the LMS's frame, wait
// for the click that opens dlgrade in a window of its own (a session cookie set inside
// a third-party frame would be dropped).
(function () {
  var link = document.getElementById("lti-enter");
  if (!link) { return; }
  if (window.top === window.self) {
    window.location.replace(link.href);
  }
})();
