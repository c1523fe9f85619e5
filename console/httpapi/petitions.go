package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/console/petitions"
	"github.com/lookout-cc/lookout/internal/errclass"
)

// maySeePII says whether the caller reads petitioners' personal data whole.
func maySeePII(c *gin.Context) bool { return mustPrincipal(c).Role.Can(auth.PermPetitionsPII) }

// listPetitions answers GET /petitions?state=&limit=: the petitions of the
// caller's subtree, newest first, the petitioners masked.
func (a *API) listPetitions(c *gin.Context) {
	f := petitions.Filter{State: c.Query("state")}
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			a.fail(c, errclass.Invalidf("limit", "must be 1 to 1000"))
			return
		}
		f.Limit = n
	}
	ps, err := a.p.Petitions.List(c.Request.Context(), mustPrincipal(c).Scope, f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, list(ps))
}

// getPetition answers GET /petitions/{id}: whole for roles that read
// personal data (each such read is audited), masked for the others.
func (a *API) getPetition(c *gin.Context) {
	whole := maySeePII(c)
	p, err := a.p.Petitions.Get(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"), whole)
	if err != nil {
		a.fail(c, err)
		return
	}
	if whole && !a.record(c, p.OrgID, "petition.read_personal_data", p.ID, "ok", nil) {
		return
	}
	c.JSON(http.StatusOK, p)
}

// createPetition answers POST /petitions: 201 with the petition as the
// caller may see it. The audit entry holds the petitioner masked.
func (a *API) createPetition(c *gin.Context) {
	var in petitions.NewPetition
	if !a.decode(c, &in) {
		return
	}
	pr := mustPrincipal(c)
	p, err := a.p.Petitions.Create(c.Request.Context(), pr.Scope, pr.UserID, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	masked := petitions.Petitioner{Name: petitions.MaskName(p.Petitioner.Name), Phone: petitions.MaskPhone(p.Petitioner.Phone),
		IDNumber: petitions.MaskIDNumber(p.Petitioner.IDNumber), Masked: true}
	if !a.record(c, p.OrgID, "petition.create", p.ID, "ok", map[string]any{"subject": p.Subject, "site_id": p.SiteID, "petitioner": masked}) {
		return
	}
	if !maySeePII(c) {
		p.Petitioner = masked
	}
	c.Header("Location", "/api/v1/petitions/"+p.ID)
	c.JSON(http.StatusCreated, p)
}

type petitionStep struct {
	Step string `json:"step"`
	Note string `json:"note"`
}

// stepPetition answers POST /petitions/{id}/steps {"step","note"}: the
// petition moves to the step's state (409 invalid_step when its state
// does not allow it), audited as petition.<step>.
func (a *API) stepPetition(c *gin.Context) {
	var in petitionStep
	if !a.decode(c, &in) {
		return
	}
	pr := mustPrincipal(c)
	p, err := a.p.Petitions.Step(c.Request.Context(), pr.Scope, pr.UserID, c.Param("id"), in.Step, in.Note)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, p.OrgID, "petition."+in.Step, p.ID, p.State, map[string]any{"note": in.Note}) {
		return
	}
	c.JSON(http.StatusOK, p)
}

// attachmentBodyCap caps the body of an upload: the file's limit and
// room for the multipart framing. A file over its limit inside a body
// under the cap is refused by the store by name (attachment_too_large,
// 422); a body over the cap is cut off (body_too_large, 413).
const attachmentBodyCap = petitions.MaxAttachmentBytes + 64<<10

// bodyCaps are the routes whose bodies may exceed MaxBodyBytes (limitBody):
// uploads, which their handlers stream with limits of their own.
var bodyCaps = map[string]int64{
	http.MethodPost + " /api/v1/petitions/:id/attachments": attachmentBodyCap,
}

// readErrors remembers the error a reader returned, so that a failed
// upload is told apart: the body broke off or grew over the cap (the
// client's request), or the file was refused (the store's answer).
type readErrors struct {
	r   io.Reader
	err error
}

func (r *readErrors) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// bodyBroken answers a request whose body could not be read.
func bodyBroken(c *gin.Context, err error) {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		writeError(c, http.StatusRequestEntityTooLarge, "body_too_large", "", fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit))
		return
	}
	writeError(c, http.StatusBadRequest, "invalid_multipart", "", "the multipart body is malformed or ended early")
}

// maskedFor hides an attachment's name from a caller without petitions:pii.
func maskedFor(c *gin.Context, att petitions.Attachment) petitions.Attachment {
	if !maySeePII(c) {
		att.Name, att.Masked = att.Neutral(), true
	}
	return att
}

// attachmentAudit is what the audit log keeps of an attachment: never
// its content or its name (personal data), the neutral name instead.
func attachmentAudit(att petitions.Attachment) map[string]any {
	return map[string]any{"attachment_id": att.ID, "name": att.Neutral(), "content_type": att.ContentType, "size": att.Size, "sha256": att.SHA256}
}

// addAttachment answers POST /petitions/{id}/attachments, a
// multipart/form-data body with the file in the part named file: 201 with
// the attachment, its name whole for roles with petitions:pii. The part
// is streamed to the store, never spooled to a temporary file (the
// content is personal data; only its sealed form is written). Audited as
// petition.attachment_add with the neutral name.
func (a *API) addAttachment(c *gin.Context) {
	mr, err := c.Request.MultipartReader()
	if err != nil {
		writeError(c, http.StatusUnsupportedMediaType, "unsupported_media_type", "", "the body must be multipart/form-data with the file in the part named file")
		return
	}
	part, err := mr.NextPart()
	if err == io.EOF {
		a.fail(c, errclass.Invalidf("file", "is missing: send the file in the part named file"))
		return
	}
	if err != nil {
		bodyBroken(c, err)
		return
	}
	if part.FormName() != "file" {
		writeError(c, http.StatusBadRequest, "unknown_field", part.FormName(), fmt.Sprintf("unknown field %q: the body holds the part file only", part.FormName()))
		return
	}
	// Parts after the file are not read: one file per request.
	body := &readErrors{r: part}
	pr := mustPrincipal(c)
	att, err := a.p.Petitions.AddAttachment(c.Request.Context(), pr.Scope, c.Param("id"), pr.UserID, part.FileName(), body)
	if body.err != nil {
		bodyBroken(c, body.err)
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, att.OrgID, "petition.attachment_add", att.PetitionID, "ok", attachmentAudit(att)) {
		return
	}
	c.Header("Location", "/api/v1/petitions/"+att.PetitionID+"/attachments/"+att.ID)
	c.JSON(http.StatusCreated, maskedFor(c, att))
}

// listAttachments answers GET /petitions/{id}/attachments: the
// attachments' metadata in upload order. Names are personal data: whole
// for roles with petitions:pii, that read audited as
// petition.read_personal_data like the petitioner's; 附件 <n> otherwise.
func (a *API) listAttachments(c *gin.Context) {
	whole := maySeePII(c)
	atts, err := a.p.Petitions.Attachments(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"), whole)
	if err != nil {
		a.fail(c, err)
		return
	}
	if whole && len(atts) > 0 && !a.record(c, atts[0].OrgID, "petition.read_personal_data", c.Param("id"), "ok", map[string]any{"attachment_names": len(atts)}) {
		return
	}
	c.JSON(http.StatusOK, list(atts))
}

// getAttachment answers GET /petitions/{id}/attachments/{att}
// (petitions:pii): the content, audited as petition.attachment_read. The
// headers keep a browser from running it: saved as a file, never shown
// inline, never sniffed as another type, sandboxed if opened anyway, and
// not cached.
func (a *API) getAttachment(c *gin.Context) {
	att, content, err := a.p.Petitions.Attachment(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"), c.Param("att"))
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, att.OrgID, "petition.attachment_read", att.PetitionID, "ok", attachmentAudit(att)) {
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Disposition", contentDisposition(att.Name))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(content)))
	c.Data(http.StatusOK, att.ContentType, content)
}

// deleteAttachment answers DELETE /petitions/{id}/attachments/{att}
// (petitions:write): 204, audited as petition.attachment_delete; 409
// petition_closed once the petition is closed.
func (a *API) deleteAttachment(c *gin.Context) {
	att, err := a.p.Petitions.DeleteAttachment(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"), c.Param("att"))
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, att.OrgID, "petition.attachment_delete", att.PetitionID, "ok", attachmentAudit(att)) {
		return
	}
	c.Status(http.StatusNoContent)
}

// contentDisposition names a download for every browser (RFC 6266): the
// name in UTF-8, percent-encoded (RFC 8187), and for clients that read
// only filename, the name when it is plain ASCII, else attachment with
// its extension.
func contentDisposition(name string) string {
	const attrChar = "!#$&+-.^_`|~" // RFC 8187 attr-char besides letters and digits
	var enc strings.Builder
	plain := true
	for _, b := range []byte(name) {
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', strings.IndexByte(attrChar, b) >= 0:
			enc.WriteByte(b)
		default:
			fmt.Fprintf(&enc, "%%%02X", b)
			plain = plain && b >= ' ' && b < 0x7f && b != '"' && b != '\\'
		}
	}
	fallback := name
	if !plain {
		fallback = "attachment"
		// The extension is the sniffed type's, ASCII letters and digits.
		if i := strings.LastIndexByte(name, '.'); i >= 0 && strings.Trim(name[i+1:], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == "" {
			fallback += name[i:]
		}
	}
	return `attachment; filename="` + fallback + `"; filename*=UTF-8''` + enc.String()
}
