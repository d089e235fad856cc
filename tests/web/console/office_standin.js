// A STAND-IN for Office.js (https://appsforoffice.microsoft.com/lib/1/hosted/office.js), for
// the browser tests only: the tests route that URL here. It is not Microsoft's code and does
// little: it offers what the pane uses, shaped as Microsoft documents it for a message in read
// mode: Office.onReady(callback) resolving {host, platform}, Office.HostType.Outlook, and
// Office.context.mailbox.item with internetMessageId, subject, itemType, from and to (each an
// EmailAddressDetails: displayName, emailAddress, recipientType). The test sets the open mail
// as window.standinMail = {internetMessageId, subject, from, to}, prepended to this file.
"use strict";
(function () {
  const mail = window.standinMail || {};
  const address = (a) => ({ displayName: a.displayName || "", emailAddress: a.emailAddress, recipientType: "externalUser" });
  const item = {
    itemType: "message",
    internetMessageId: mail.internetMessageId,
    subject: mail.subject || "",
    from: mail.from ? address(mail.from) : null,
    to: (mail.to || []).map(address),
  };
  const info = { host: "Outlook", platform: "OfficeOnline" };
  window.Office = {
    HostType: { Outlook: "Outlook", Word: "Word", Excel: "Excel", PowerPoint: "PowerPoint" },
    PlatformType: { OfficeOnline: "OfficeOnline", PC: "PC", Mac: "Mac" },
    context: { mailbox: { item: item, userProfile: { emailAddress: mail.user || "me@example.com" } } },
    onReady(callback) {
      return new Promise((resolve) => {
        const ready = () => { if (callback) callback(info); resolve(info); };
        if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
        else setTimeout(ready, 0);
      });
    },
  };
})();
