use nextgen_events::prelude::*;

struct Db;
struct Mailer;

#[nextgen_event("customer.created")]
async fn welcome(customer: Customer, db: web::Data<Db>, mailer: actix_web::web::Data<Mailer>) {
    let _ = (customer, db, mailer);
}

fn main() {}
