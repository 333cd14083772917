'use strict';
// A list row's Accept / "File under…" (admin/quick_review.py): posts the row's fields with
// fetch and shows the result in the row, so the merchant stays where they are in the list.
// Without JavaScript the same buttons post the list form and come back with a message.
{
    function announce(text, ok) {
        let region = document.getElementById('prodcat-announce');
        if (!region) {
            region = document.createElement('div');
            region.id = 'prodcat-announce';
            region.setAttribute('role', 'status');
            region.className = 'prodcat-announce';
            const main = document.getElementById('content-main') || document.body;
            main.prepend(region);
        }
        region.textContent = text;
        region.classList.toggle('prodcat-announce--error', !ok);
    }

    document.addEventListener('click', (event) => {
        const button = event.target.closest('button[data-prodcat-quick]');
        if (!button) { return; }
        const form = button.form;
        const token = form && form.querySelector('input[name=csrfmiddlewaretoken]');
        if (!token) { return; }  // let the browser post the form
        event.preventDefault();
        const data = new FormData();
        data.append('csrfmiddlewaretoken', token.value);
        data.append('decision', button.value);
        const slot = button.closest('[data-prodcat-quick-slot]');
        if (slot) {
            slot.querySelectorAll('select').forEach((s) => data.append(s.name, s.value));
        }
        button.disabled = true;
        fetch(button.getAttribute('formaction'), {
            method: 'POST', body: data, credentials: 'same-origin',
            headers: {'Accept': 'application/json', 'X-Requested-With': 'XMLHttpRequest'},
        })
            .then((r) => r.json())
            .then((answer) => {
                announce(answer.message, answer.ok);
                if (answer.ok && slot) {
                    slot.innerHTML = answer.badge + ' <span class="prodcat-decision"></span>';
                    slot.querySelector('.prodcat-decision').textContent = answer.message;
                } else {
                    button.disabled = false;
                }
            })
            .catch((error) => {
                announce('The decision could not be sent (' + error.message + ').', false);
                button.disabled = false;
            });
    });
}
