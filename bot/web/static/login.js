// Opening a sign-in link signs in at once; link previews never run this.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("sign-in");
  if (form) { form.submit(); }
});
